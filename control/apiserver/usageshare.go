package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// Usage reports reach one API server each (the service's queue group
// spreads them), but `kyb top` may ask any: so the server that takes a
// report passes it on to every other API server on usageShareSubject, in
// the control plane's own account (KYB), where only the control plane
// logs in: no node or user can publish there. Each server keeps the whole
// last hour, and a top answered by any server is the same. The report goes
// with the time the first server took it, so every server stores the same
// sample; a server ignores what it published itself (it recorded it
// already, before replying, so a top right after a report sees it).
const usageShareSubject = "kyb.internal.usage"

// sharedUsage is a report passed between API servers.
type sharedUsage struct {
	From   string               `json:"from"`
	Node   string               `json:"node"`
	Time   time.Time            `json:"time"`
	Report *api.NodeUsageReport `json:"report"`
}

// newServerID is this API server's name among its peers, for the shared
// reports it must not record twice.
func newServerID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// shareUsage sends a report this server took (its pods already checked
// against the node's bindings) to the other API servers.
func (s *Server) shareUsage(node string, at time.Time, r *api.NodeUsageReport) error {
	b, err := json.Marshal(sharedUsage{From: s.id, Node: node, Time: at, Report: r})
	if err != nil {
		return fmt.Errorf("share usage of node %s: %w", node, err)
	}
	if err := s.nc.Publish(usageShareSubject, b); err != nil {
		return fmt.Errorf("share usage of node %s: %w", node, err)
	}
	return nil
}

// subscribeUsageShare records the reports the other API servers took.
func (s *Server) subscribeUsageShare() (*nats.Subscription, error) {
	sub, err := s.nc.Subscribe(usageShareSubject, func(m *nats.Msg) {
		var su sharedUsage
		if err := json.Unmarshal(m.Data, &su); err != nil || su.Report == nil || su.From == s.id {
			return
		}
		// This server's cache decides which series a report ends, as
		// for a report it takes itself; the pods in it were checked.
		s.usage.record(su.Node, su.Report, su.Time, s.boundTo(su.Node))
	})
	if err != nil {
		return nil, fmt.Errorf("apiserver: subscribe %s: %w", usageShareSubject, err)
	}
	return sub, nil
}

// boundTo reports whether a pod (namespace, name and, when not empty,
// uid) is bound to node in this server's cache.
func (s *Server) boundTo(node string) func(ns, name, uid string) bool {
	return func(ns, name, uid string) bool {
		e := s.cache.get(podKind, ns, name)
		if e == nil {
			return false
		}
		p := e.obj.(*api.Pod)
		return p.Spec.NodeName == node && (uid == "" || string(p.UID) == uid)
	}
}
