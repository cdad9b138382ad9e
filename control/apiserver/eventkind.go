package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/events"
	"github.com/kybernetes/kybernetes/internal/record"
)

// Events (api.Event) are kept by control/events in their own stream, not in
// the objects bucket: kyb.api.v1.list, get and watch of kind Event read it;
// apply and delete refuse the kind; nodes record their pods' events through
// kyb.node.<name>.events, checked here.

// maxNodeEventBytes bounds the body of a node's event (an Event's fields
// are a few KB at most).
const maxNodeEventBytes = 64 << 10

// eventQuery is a checked list or watch of events: selectors.
type eventQuery struct {
	labels labels.Selector // nil: all
	match  func(*api.Event) bool
}

func (q *eventQuery) matches(ev *api.Event) bool {
	if q == nil {
		return true
	}
	if q.labels != nil && !q.labels.Matches(labels.Set(ev.Labels)) {
		return false
	}
	return q.match == nil || q.match(ev)
}

// parseEventQuery parses the selectors of an event list or watch, with a
// 400 naming the field.
func parseEventQuery(labelSel, fieldSel string) (*eventQuery, error) {
	q := &eventQuery{}
	if labelSel != "" {
		sel, err := labels.Parse(labelSel)
		if err != nil {
			return nil, badField("labelSelector", []string{err.Error()})
		}
		q.labels = sel
	}
	sel, err := events.ParseSelector(fieldSel)
	if err != nil {
		return nil, badField("fieldSelector", []string{err.Error()})
	}
	q.match = events.Matcher(sel)
	return q, nil
}

// listEvents answers a list of kind Event: the newest events that fit in
// one reply (or limit), oldest first; resourceVersion is the stream
// sequence to watch from.
func (s *Server) listEvents(ctx context.Context, ns string, q *eventQuery, limit int) ([]byte, error) {
	evs, rev, err := s.Events().List(ctx, ns, q.matches)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	raws := make([][]byte, len(evs))
	size := 0
	budget := int(s.nc.MaxPayload()) - listHeadroom
	first := len(evs)
	// Keep the newest that fit.
	for i := len(evs) - 1; i >= 0; i-- {
		raw, err := json.Marshal(evs[i])
		if err != nil {
			return nil, err
		}
		if size+len(raw)+1 > budget && first < len(evs) {
			break
		}
		raws[i], size, first = raw, size+len(raw)+1, i
	}
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","resourceVersion":"`)
	b.WriteString(strconv.FormatUint(rev, 10))
	b.WriteString(`","items":[`)
	for i, raw := range raws[first:] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// getEvent answers a get of kind Event by name.
func (s *Server) getEvent(ctx context.Context, ns, name string) ([]byte, error) {
	evs, _, err := s.Events().List(ctx, ns, func(ev *api.Event) bool { return ev.Name == name })
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, api.NewNotFound("Event", name)
	}
	return json.Marshal(evs[len(evs)-1])
}

// handleEventWatch answers a watch of kind Event: the current events first
// as ADDED (unless resourceVersion is set), then every event recorded
// later, ADDED when new and MODIFIED when a repeat; each data message
// carries its stream sequence, from which the watch resumes.
func (s *Server) handleEventWatch(req micro.Request, r api.WatchRequest, ns string) {
	q, err := parseEventQuery(r.LabelSelector, r.FieldSelector)
	if err == nil {
		err = s.authorize(req, api.VerbWatch, eventKind.Plural, ns, "")
	}
	var from uint64
	initial := r.ResourceVersion == "" || r.ResourceVersion == "0"
	if err == nil && !initial {
		if from, err = strconv.ParseUint(r.ResourceVersion, 10, 64); err != nil {
			err = api.NewBadRequest("resourceVersion: %q is not a revision", r.ResourceVersion)
		}
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	s.serveStream(req, s.streams, "watch events", func(ctx context.Context, st *stream) (string, error) {
		cursor := from
		resume := func() (string, error) { return strconv.FormatUint(cursor, 10), nil }
		if initial {
			evs, rev, err := s.Events().List(ctx, ns, q.matches)
			if err != nil {
				return "", err
			}
			cursor = rev
			full := false
			for _, ev := range evs {
				raw, err := json.Marshal(ev)
				if err != nil {
					return "", err
				}
				err = st.send(nil, envelope(api.EventAdded, "object", raw))
				if errors.Is(err, errWindow) {
					full = true
				} else if err != nil {
					return "", err
				}
			}
			if full {
				return resume()
			}
		}
		err := s.Events().Watch(ctx, ns, cursor, func(ev *api.Event) error {
			seq, _ := strconv.ParseUint(ev.ResourceVersion, 10, 64)
			if !q.matches(ev) {
				cursor = seq
				return nil
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			typ := api.EventModified
			if ev.Count <= 1 {
				typ = api.EventAdded
			}
			err = st.send(nats.Header{api.StreamSeqHeader: []string{ev.ResourceVersion}}, envelope(typ, "object", raw))
			cursor = seq
			return err
		})
		if err != nil && !errors.Is(err, errWindow) {
			return "", err
		}
		return resume()
	})
}

// handleNodeEvents records an event a node's agent saw, answered with the
// event as stored. The node may speak only of pods bound to it (403
// otherwise, as for pod status), and is the event's source: the agent
// ("kubelet") on that host.
func (s *Server) handleNodeEvents(req micro.Request) {
	if n := len(req.Data()); n > maxNodeEventBytes {
		syncErr(req, tooLarge(n))
		return
	}
	var ev api.Event
	node, err := nodeBody(req.Subject(), req.Data(), &ev, "Event")
	if err != nil {
		syncErr(req, err)
		return
	}
	if err := api.ValidateEvent(&ev); err != nil {
		syncErr(req, err)
		return
	}
	ref := &ev.InvolvedObject
	if ref.Kind != podKind.Name {
		syncErr(req, api.NewForbidden("node %q may record events only about pods, not %s", node, trunc(ref.Kind)))
		return
	}
	bound, uid := false, ""
	if e := s.cache.get(podKind, ref.Namespace, ref.Name); e != nil {
		pod := e.obj.(*api.Pod)
		bound = pod.Spec.NodeName == node && (ref.UID == "" || ref.UID == pod.UID)
		uid = pod.UID
	} else if g, ok := s.gone.get(cacheKey(ref.Namespace, ref.Name)); ok {
		// Deleted lately: its node's last words (Killing) still count,
		// when they name the pod by its UID.
		bound = g.node == node && ref.UID == g.uid
		uid = g.uid
	}
	if !bound {
		syncErr(req, api.NewForbidden("node %q may record events only about pods bound to it; pod %s/%s is not", node, ref.Namespace, ref.Name))
		return
	}
	ref.UID = uid
	ref.APIVersion = "v1"
	ev.Source = api.EventSource{Component: api.ComponentKubelet, Host: node}
	ev.ReportingComponent, ev.ReportingInstance = api.ComponentKubelet, node
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		out, err := s.Events().Record(ctx, &ev)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
}

// Events returns the server's event store; nil before Start.
func (s *Server) Events() *events.Store { return s.events.Load() }

// Recorder returns a recorder for a component of the control plane (the
// scheduler, a controller) that writes into this server's event store
// directly, as a trusted component; it may be made before Start (events
// recorded before it are dropped with a warning).
func (s *Server) Recorder(component string, log *slog.Logger) *record.Recorder {
	sink := record.SinkFunc(func(ctx context.Context, ev *api.Event) error {
		st := s.Events()
		if st == nil {
			return errors.New("event store not open yet")
		}
		_, err := st.Record(ctx, ev)
		return err
	})
	return record.New(sink, api.EventSource{Component: component}, record.Options{}, log)
}

// gonePods remembers, for a while, the node and UID of pods deleted from the
// store, so that the events their node records while and just after
// stopping them are still taken. Safe for concurrent use.
type gonePods struct {
	mu    sync.Mutex
	m     map[string]gonePod
	order []goneKey // in the order they were added, for the bound
}

type goneKey struct {
	key string
	at  time.Time
}

type gonePod struct {
	node, uid string
	at        time.Time
}

// Deleted pods are remembered for goneKeep, at most goneMax of them.
const (
	goneKeep = 2 * time.Minute
	goneMax  = 4096
)

func newGonePods() *gonePods { return &gonePods{m: map[string]gonePod{}} }

func (g *gonePods) add(key, node, uid string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.order) >= goneMax {
		old := g.order[0]
		g.order = g.order[1:]
		if p, ok := g.m[old.key]; ok && p.at.Equal(old.at) { // not added again since
			delete(g.m, old.key)
		}
	}
	now := time.Now()
	g.m[key] = gonePod{node: node, uid: uid, at: now}
	g.order = append(g.order, goneKey{key, now})
}

func (g *gonePods) get(key string) (gonePod, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.m[key]
	if ok && time.Since(p.at) > goneKeep {
		delete(g.m, key)
		return gonePod{}, false
	}
	return p, ok
}
