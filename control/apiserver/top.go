package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authz"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// maxUsageContainers bounds the containers of one pod in a usage report.
const maxUsageContainers = 256

// parseUsageReport decodes and checks a node's usage report: every pod's
// namespace and name DNS-1123 labels, container names too, bounded counts.
// The 400 names the field.
func parseUsageReport(subject string, data []byte) (string, *api.NodeUsageReport, error) {
	var r api.NodeUsageReport
	node, err := nodeBody(subject, data, &r, "NodeUsageReport")
	if err != nil {
		return "", nil, err
	}
	if len(r.Pods) > api.MaxUsagePods {
		return "", nil, badField("pods", []string{fmt.Sprintf("at most %d pods per report", api.MaxUsagePods)})
	}
	if r.Window.Duration < 0 || r.Window.Duration > time.Hour {
		return "", nil, badField("window", []string{"must be between 0 and 1h"})
	}
	for i, p := range r.Pods {
		if msgs := validation.IsDNS1123Label(p.Namespace); len(msgs) > 0 {
			return "", nil, badField(fmt.Sprintf("pods[%d].namespace", i), msgs)
		}
		if msgs := validation.IsDNS1123Label(p.Name); len(msgs) > 0 {
			return "", nil, badField(fmt.Sprintf("pods[%d].name", i), msgs)
		}
		if len(p.UID) > 128 {
			return "", nil, badField(fmt.Sprintf("pods[%d].uid", i), []string{"at most 128 characters"})
		}
		if len(p.Runtime) > 63 {
			return "", nil, badField(fmt.Sprintf("pods[%d].runtime", i), []string{"at most 63 characters"})
		}
		if len(p.Containers) > maxUsageContainers {
			return "", nil, badField(fmt.Sprintf("pods[%d].containers", i), []string{fmt.Sprintf("at most %d containers", maxUsageContainers)})
		}
		for j, c := range p.Containers {
			if msgs := validation.IsDNS1123Label(c.Name); len(msgs) > 0 {
				return "", nil, badField(fmt.Sprintf("pods[%d].containers[%d].name", i, j), msgs)
			}
		}
	}
	return node, &r, nil
}

// handleNodeUsage takes in kyb.node.<node>.usage: the node's sample, kept
// for pods bound to that node only (a node cannot write another's pods'
// usage).
func (s *Server) handleNodeUsage(req micro.Request) {
	node, r, err := parseUsageReport(req.Subject(), req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		if s.cache.get(nodeKind, "", node) == nil {
			return nil, api.NewNotFound("Node", node)
		}
		bound, now := s.boundTo(node), time.Now()
		// Only the pods bound to the node go on (to this server's
		// history and the others').
		kept := r.Pods[:0]
		for _, p := range r.Pods {
			if bound(p.Namespace, p.Name, p.UID) {
				kept = append(kept, p)
			}
		}
		rejected := len(r.Pods) - len(kept)
		r.Pods = kept
		s.usage.record(node, r, now, bound)
		metrics.UsageReports.WithLabelValues("stored").Add(float64(len(kept)))
		if rejected > 0 {
			metrics.UsageReports.WithLabelValues("rejected").Add(float64(rejected))
		}
		if err := s.shareUsage(node, now, r); err != nil {
			s.log.Warn("usage report kept by this API server only", "node", node, "err", err)
		}
		return ackOK, nil
	})
}

// parseTopRequest decodes and checks a TopRequest, normalizing Kind to
// "nodes" or "pods" and Namespace to the one asked ("" for all).
func parseTopRequest(data []byte) (*api.TopRequest, labels.Selector, error) {
	var r api.TopRequest
	if err := decodeBody(data, &r, "TopRequest"); err != nil {
		return nil, nil, err
	}
	switch strings.ToLower(r.Kind) {
	case "nodes", "node", "no":
		r.Kind = "nodes"
		r.Namespace, r.AllNamespaces = "", true
	case "pods", "pod", "po":
		r.Kind = "pods"
		if r.AllNamespaces {
			r.Namespace = ""
		} else if r.Namespace == "" {
			r.Namespace = api.DefaultNamespace
		}
	default:
		return nil, nil, badField("kind", []string{`must be "nodes" or "pods"`})
	}
	if r.Namespace != "" {
		if msgs := validation.IsDNS1123Label(r.Namespace); len(msgs) > 0 {
			return nil, nil, badField("namespace", msgs)
		}
	}
	if r.Name != "" {
		if msgs := validation.IsDNS1123Label(r.Name); len(msgs) > 0 {
			return nil, nil, badField("name", msgs)
		}
	}
	sel := labels.Everything()
	if r.LabelSelector != "" {
		var err error
		if sel, err = labels.Parse(r.LabelSelector); err != nil {
			return nil, nil, badField("labelSelector", []string{err.Error()})
		}
	}
	return &r, sel, nil
}

// handleTop answers kyb.api.v1.top with the usage of nodes or pods, as
// RBAC on resource nodes or pods of group metrics.k8s.io allows: get for
// one object, list otherwise.
func (s *Server) handleTop(req micro.Request) {
	r, sel, err := parseTopRequest(req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	verb := api.VerbList
	if r.Name != "" {
		verb = api.VerbGet
	}
	who, err := s.identify(req)
	if err == nil {
		err = s.authz.Authorize(authz.Attributes{User: who, Verb: verb, APIGroup: api.MetricsGroup,
			Resource: r.Kind, Namespace: r.Namespace, Name: r.Name})
	}
	if st, ok := err.(*api.Status); ok && st.Code == 403 {
		cp := *st
		cp.Message += " in API group " + api.MetricsGroup
		err = &cp
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		reply := s.top(r, sel, time.Now())
		if r.Name != "" && len(reply.Nodes)+len(reply.Pods) == 0 {
			kind := "PodMetrics"
			if r.Kind == "nodes" {
				kind = "NodeMetrics"
			}
			return nil, api.NewNotFound(kind, r.Name)
		}
		return json.Marshal(reply)
	})
}

// top builds the reply of r from the usage history and the cache.
func (s *Server) top(r *api.TopRequest, sel labels.Selector, now time.Time) *api.TopReply {
	u := s.usage
	since := now.Add(-u.keep)
	reply := &api.TopReply{}
	var gone []string
	u.mu.RLock()
	if r.Kind == "nodes" {
		for name, ns := range u.nodes {
			if r.Name != "" && name != r.Name {
				continue
			}
			e := s.cache.get(nodeKind, "", name)
			if e == nil {
				gone = append(gone, name)
				continue
			}
			n := e.obj.(*api.Node)
			if !sel.Matches(labels.Set(n.Labels)) || ns.last.Time.Before(since) {
				continue
			}
			m := api.NodeMetrics{Name: name, Timestamp: ns.last.Time, Window: api.Duration{Duration: ns.window}, Usage: ns.last}
			if q, ok := n.Status.Allocatable[api.ResourceCPU]; ok {
				m.AllocatableCPUMilli = q.MilliValue()
			}
			if q, ok := n.Status.Allocatable[api.ResourceMemory]; ok {
				m.AllocatableMemoryBytes = q.Value()
			}
			if r.Series {
				m.Series = ns.ring.since(since)
			}
			reply.Nodes = append(reply.Nodes, m)
		}
	} else {
		for key, ps := range u.pods {
			ns, name := splitKey(key)
			if (r.Namespace != "" && ns != r.Namespace) || (r.Name != "" && name != r.Name) || ps.last.Time.Before(since) {
				continue
			}
			e := s.cache.get(podKind, ns, name)
			if e == nil {
				continue
			}
			p := e.obj.(*api.Pod)
			if string(p.UID) != ps.uid && ps.uid != "" || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			m := api.PodMetrics{Namespace: ns, Name: name, Node: ps.node, Runtime: ps.runtime, Timestamp: ps.last.Time,
				Window: api.Duration{Duration: ps.window}, Usage: ps.last, Containers: slices.Clone(ps.containers)}
			if r.Series {
				m.Series = ps.ring.since(since)
			}
			reply.Pods = append(reply.Pods, m)
		}
	}
	u.mu.RUnlock()
	for _, n := range gone {
		u.forgetNode(n)
	}
	slices.SortFunc(reply.Nodes, func(a, b api.NodeMetrics) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(reply.Pods, func(a, b api.PodMetrics) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return reply
}
