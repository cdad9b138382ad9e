package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// revOf parses an object's resourceVersion; 0 when unset or malformed.
func revOf(obj api.Object) uint64 {
	r, _ := strconv.ParseUint(obj.GetObjectMeta().ResourceVersion, 10, 64)
	return r
}

// writeThrough records an object this server just wrote, so that a list
// right after the write sees it. It returns the object's JSON.
func (s *Server) writeThrough(obj api.Object) []byte {
	raw, err := encode(obj)
	if err != nil {
		s.log.Error("cache write-through", "err", err)
		return nil
	}
	s.cache.put(api.KindOf(obj), obj, raw, revOf(obj))
	s.authz.Observe(obj)
	return raw
}

// watchLoop runs the one store watch of the process until ctx ends,
// restarting it from the last revision seen when it fails.
func (s *Server) watchLoop(ctx context.Context) {
	var from uint64
	first := true
	wait := retry.NewTimer(retry.DefaultWatch)
	for ctx.Err() == nil {
		ch, err := s.st.WatchProgress(ctx, nil, from)
		if err != nil {
			s.log.Error("store watch", "err", err, "from", from)
		} else {
			last := s.consume(ctx, ch, &first)
			if last > from {
				from = last
				wait.Reset()
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("store watch ended; restarting", "from", from)
		}
		t := time.NewTimer(wait.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// consume applies watch events to the cache and publishes events and
// assignments once the initial state is synced. It returns the last revision seen.
func (s *Server) consume(ctx context.Context, ch <-chan store.Event, first *bool) uint64 {
	var last uint64
	live := !*first
	for ev := range ch {
		if ev.Type == store.Synced {
			if *first {
				*first = false
				s.hist.start(s.cache.revision())
				close(s.synced)
			}
			live = true
			continue
		}
		if ev.Type == store.Progress {
			// A lease renewal or another message that changes no object:
			// the cache is current up to it (consistent reads wait on it).
			last = max(last, ev.Revision)
			s.cache.setRev(ev.Revision)
			continue
		}
		if ev.Object == nil {
			continue
		}
		last = max(last, ev.Revision)
		s.apply(ctx, ev, live)
		s.cache.setRev(ev.Revision)
	}
	return last
}

// apply applies one watch event to the cache and, when live, publishes it.
func (s *Server) apply(ctx context.Context, ev store.Event, live bool) {
	obj := ev.Object
	kind := api.KindOf(obj)
	m := obj.GetObjectMeta()
	// A write of this server is cached already, encoded: reuse that.
	raw := s.cache.rawAt(kind, m.Namespace, m.Name, ev.Revision)
	if raw == nil || ev.Type == store.Deleted {
		var err error
		if raw, err = encode(obj); err != nil {
			s.log.Error("watch: encode", "err", err)
			return
		}
	}
	var typ string
	switch ev.Type {
	case store.Deleted:
		typ = api.EventDeleted
		s.cache.remove(kind, m.Namespace, m.Name, ev.Revision)
		if svc, ok := obj.(*api.Service); ok && live {
			s.serviceGone(svc)
		}
	case store.Added, store.Modified:
		typ = api.EventModified
		if ev.Type == store.Added {
			typ = api.EventAdded
		}
		s.cache.put(kind, obj, raw, ev.Revision)
	default:
		return
	}
	s.observeRBAC(ctx, obj, ev.Type == store.Deleted, live)
	// The object before this change, as seen by this watch alone.
	seenKey := kind.Name + "/" + cacheKey(m.Namespace, m.Name)
	prev := s.seen[seenKey]
	if ev.Type == store.Deleted {
		delete(s.seen, seenKey)
	} else {
		s.seen[seenKey] = obj
	}
	// The node each pod was bound to, as seen by this watch alone (the
	// cache also holds write-throughs, so it cannot tell what changed).
	var oldNode string
	pod, isPod := obj.(*api.Pod)
	if isPod {
		key := cacheKey(m.Namespace, m.Name)
		oldNode = s.podNodes[key]
		switch {
		case ev.Type == store.Deleted || pod.Spec.NodeName == "":
			delete(s.podNodes, key)
			if ev.Type == store.Deleted && pod.Spec.NodeName != "" {
				s.gone.add(key, pod.Spec.NodeName, pod.UID)
			}
		default:
			s.podNodes[key] = pod.Spec.NodeName
		}
	}
	if !live {
		return
	}
	s.hist.add(change{rev: ev.Revision, kind: kind, typ: typ, obj: obj, prev: prev, raw: raw})
	if isPod {
		s.publishAssignment(pod, typ, raw, oldNode)
	}
	switch obj.(type) {
	case *api.ConfigMap, *api.Secret:
		s.publishConfigNotice(obj, prev, typ)
	}
}

// envelope returns {"type":typ,"<field>":raw} without re-encoding raw.
func envelope(typ, field string, raw []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(raw) + 32)
	b.WriteString(`{"type":"`)
	b.WriteString(typ)
	b.WriteString(`","`)
	b.WriteString(field)
	b.WriteString(`":`)
	b.Write(raw)
	b.WriteByte('}')
	return b.Bytes()
}

// maxPublishSubject bounds a subject this server publishes on. Names are
// validated before they are stored, so only an object written around the
// apiserver could exceed it; publishing it anyway would exceed NATS' 4 KB
// control line and cost the server its connection.
const maxPublishSubject = 1024

// publishable reports whether subject may be published on: short enough,
// and no empty token or whitespace (which a name from outside could hold).
func publishable(subject string) bool {
	if len(subject) == 0 || len(subject) > maxPublishSubject {
		return false
	}
	if strings.Contains(subject, "..") || subject[0] == '.' || subject[len(subject)-1] == '.' {
		return false
	}
	return !strings.ContainsAny(subject, " \t\r\n*>")
}

// trunc shortens s for a log line.
func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// publishAssignment tells the pod's node (and a former node, if the pod
// moved) about the change.
func (s *Server) publishAssignment(pod *api.Pod, typ string, raw []byte, oldNode string) {
	send := func(node, typ string, raw []byte) {
		subject := api.AgentSubject(node, api.AgentVerbPods)
		if !publishable(subject) {
			s.log.Warn("not publishing assignment: node name unfit for a subject", "pod", pod.Namespace+"/"+trunc(pod.Name), "node", trunc(node))
			return
		}
		if err := s.nc.Publish(subject, envelope(typ, "pod", raw)); err != nil {
			s.log.Warn("publish assignment", "node", node, "err", err)
		}
	}
	if oldNode != "" && oldNode != pod.Spec.NodeName {
		send(oldNode, api.EventDeleted, raw)
	}
	if pod.Spec.NodeName != "" {
		if typ == api.EventModified && oldNode != pod.Spec.NodeName {
			typ = api.EventAdded // newly bound: an add from the node's point of view
		}
		send(pod.Spec.NodeName, typ, raw)
	}
}
