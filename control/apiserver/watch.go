package apiserver

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

// watchBatch is how many changes a watch takes from the history at once.
const watchBatch = 256

// watchFilter decides what one watch sees: its kinds (one for a user's
// watch), a namespace ("" for all) and selectors (nil for all). synced
// sends a SYNCED event after the initial list.
type watchFilter struct {
	kinds  []*api.Kind
	ns     string
	sel    *store.ListOptions
	synced bool
}

func (f *watchFilter) matches(obj api.Object) bool {
	if obj == nil {
		return false
	}
	if f.ns != "" && obj.GetObjectMeta().Namespace != f.ns {
		return false
	}
	return f.sel == nil || f.sel.Matches(obj)
}

// event turns a change into the event this watch sees, as Kubernetes'
// watch cache does: an object that starts matching is ADDED, one that
// stops matching is DELETED (with its last matching state). ok is false
// when the watch sees nothing of it.
func (f *watchFilter) event(c *change) (typ string, raw []byte, ok bool) {
	if !slices.Contains(f.kinds, c.kind) {
		return "", nil, false
	}
	cur := f.matches(c.obj)
	switch c.typ {
	case api.EventAdded, api.EventDeleted:
		return c.typ, c.raw, cur
	}
	was := f.matches(c.prev)
	switch {
	case cur && was:
		return api.EventModified, c.raw, true
	case cur:
		return api.EventAdded, c.raw, true
	case was:
		raw, err := encode(c.prev)
		if err != nil {
			return "", nil, false
		}
		return api.EventDeleted, raw, true
	}
	return "", nil, false
}

func (s *Server) handleWatch(req micro.Request) {
	var r api.WatchRequest
	if err := decodeBody(req.Data(), &r, "WatchRequest"); err != nil {
		syncErr(req, err)
		return
	}
	k, ns, err := scope(r.Kind, r.Namespace)
	if err != nil {
		syncErr(req, err)
		return
	}
	if r.AllNamespaces {
		ns = ""
	}
	if k == eventKind {
		s.handleEventWatch(req, r, ns)
		return
	}
	sel, err := parseSelectors(r.LabelSelector, r.FieldSelector)
	if err == nil {
		err = s.authorize(req, api.VerbWatch, k.Plural, ns, "")
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	var from uint64
	initial := r.ResourceVersion == ""
	if !initial {
		if from, err = strconv.ParseUint(r.ResourceVersion, 10, 64); err != nil {
			syncErr(req, api.NewBadRequest("resourceVersion: %q is not a revision", r.ResourceVersion))
			return
		}
		// "0" is Kubernetes' "any revision": every change since the
		// beginning when the history holds them all, else the current
		// objects first.
		initial = from == 0 && s.hist.floorRev() > 0
	}
	f := &watchFilter{kinds: []*api.Kind{k}, ns: ns, sel: sel}
	s.serveStream(req, s.streams, "watch", func(ctx context.Context, st *stream) (string, error) {
		return s.runWatch(ctx, st, f, from, initial)
	})
}

// runWatch sends the changes after revision from that f sees (the current
// objects first as ADDED when initial) until ctx ends or the window fills,
// and returns the revision to resume from.
func (s *Server) runWatch(ctx context.Context, st *stream, f *watchFilter, from uint64, initial bool) (string, error) {
	// skip holds objects the initial list sent at a revision newer than
	// the history's: their older changes are not sent again.
	var skip map[string]uint64
	cursor := from
	resume := func() (string, error) { return strconv.FormatUint(cursor, 10), nil }
	if initial {
		cursor = s.hist.lastRev()
		var objs [][]byte
		for _, k := range f.kinds {
			s.cache.scan(k, f.ns, "", func(key string, e *entry) bool {
				if f.sel != nil && !f.sel.Matches(e.obj) {
					return true
				}
				if e.rev > cursor {
					if skip == nil {
						skip = map[string]uint64{}
					}
					skip[k.Name+"/"+key] = e.rev
				}
				objs = append(objs, e.raw)
				return true
			})
		}
		if f.synced {
			objs = append(objs, nil)
		}
		// The initial list goes whole (it has no revision to resume
		// from inside it); the window counts it.
		full := false
		for _, raw := range objs {
			msg := envelope(api.EventAdded, "object", raw)
			if raw == nil {
				msg = envelope(api.EventSynced, "object", []byte("null"))
			}
			err := st.send(nil, msg)
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
	for {
		changes, upTo, wake, err := s.hist.since(cursor, watchBatch)
		if err != nil {
			return "", err
		}
		for i := range changes {
			c := &changes[i]
			typ, raw, ok := f.event(c)
			if ok && skip != nil {
				m := c.obj.GetObjectMeta()
				if r, seen := skip[c.kind.Name+"/"+cacheKey(m.Namespace, m.Name)]; seen && c.rev <= r {
					ok = false
				}
			}
			if ok {
				err := st.send(nats.Header{api.StreamSeqHeader: []string{strconv.FormatUint(c.rev, 10)}}, envelope(typ, "object", raw))
				cursor = c.rev
				if errors.Is(err, errWindow) {
					return resume()
				}
				if err != nil {
					return "", err
				}
			}
		}
		cursor = upTo
		if len(changes) == watchBatch {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return resume()
		}
	}
}
