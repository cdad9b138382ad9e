package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// source is one set of objects a view shows: a kind in a namespace (or
// all), optionally narrowed by selectors, read with the user's identity.
type source struct {
	Kind, Namespace string
	All             bool
	Label, Field    string
}

func (src source) listRequest() api.ListRequest {
	return api.ListRequest{Kind: src.Kind, Namespace: src.Namespace, AllNamespaces: src.All, LabelSelector: src.Label, FieldSelector: src.Field}
}

// feed is what the user may see of one source now: its objects by
// namespace/name, or why it cannot be read (403 and the like).
type feed struct {
	src  source
	objs map[string]api.Object
	err  error
}

func objKey(o api.Object) string {
	m := o.GetObjectMeta()
	return m.Namespace + "/" + m.Name
}

// items returns the feed's objects by namespace and name.
func (f *feed) items() []api.Object {
	if f == nil {
		return nil
	}
	out := make([]api.Object, 0, len(f.objs))
	for _, o := range f.objs {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b api.Object) int {
		if c := cmpString(a.GetObjectMeta().Namespace, b.GetObjectMeta().Namespace); c != 0 {
			return c
		}
		return cmpString(a.GetObjectMeta().Name, b.GetObjectMeta().Name)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// snapshot is every feed of a view, by the name the view gave its source.
type snapshot map[string]*feed

// list reads src once; an error the user should see (403, 400) is kept in
// the feed rather than returned.
func list(ctx context.Context, c *client.Client, src source) (*feed, string) {
	f := &feed{src: src, objs: map[string]api.Object{}}
	objs, rv, err := c.List(ctx, src.listRequest())
	if err != nil {
		f.err = err
		return f, ""
	}
	for _, o := range objs {
		f.objs[objKey(o)] = o
	}
	return f, rv
}

// read lists every source of a view.
func read(ctx context.Context, c *client.Client, srcs map[string]source) snapshot {
	snap := snapshot{}
	for name, src := range srcs {
		snap[name], _ = list(ctx, c, src)
	}
	return snap
}

// change is one watch event of the source named src, or (reset) a fresh
// list of it after its watch failed.
type change struct {
	src   string
	ev    client.Event
	reset *feed
}

// final reports whether a read failed for good (a 4xx: forbidden, bad
// selector), rather than for now (no apiserver answering, a timeout).
func final(err error) bool {
	var st *api.Status
	return errors.As(err, &st) && st.Code >= 400 && st.Code < 500
}

// follow keeps snap's feed name current: a list, then a watch from the
// list's revision, listing again when a watch ends with an error (410 when
// the server no longer holds the changes) or a list failed for now (503).
// Changes go to out.
func follow(ctx context.Context, c *client.Client, name string, src source, first *feed, rv string, out chan<- change) {
	timer := retry.NewTimer(retry.DefaultWatch)
	for ctx.Err() == nil {
		if first.err != nil && final(first.err) {
			return // forbidden or bad: shown as it is, not retried
		}
		if first.err == nil {
			if !watch(ctx, c, name, src, &rv, timer, out) {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(timer.Next()):
		case <-ctx.Done():
			return
		}
		first, rv = list(ctx, c, src)
		select {
		case out <- change{src: name, reset: first}:
		case <-ctx.Done():
			return
		}
	}
}

// watch sends the changes after *rv to out until the watch ends (moving
// *rv along); it reports false when it could not start or ctx ended.
func watch(ctx context.Context, c *client.Client, name string, src source, rv *string, timer *retry.Timer, out chan<- change) bool {
	w, err := c.WatchFrom(ctx, api.WatchRequest{Kind: src.Kind, Namespace: src.Namespace, AllNamespaces: src.All,
		LabelSelector: src.Label, FieldSelector: src.Field, ResourceVersion: *rv})
	if err != nil {
		return false
	}
	for ev := range w.Events() {
		timer.Reset()
		if ev.ResourceVersion != "" {
			*rv = ev.ResourceVersion
		}
		select {
		case out <- change{src: name, ev: ev}:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

func (snap snapshot) apply(ch change) {
	if ch.reset != nil {
		snap[ch.src] = ch.reset
		return
	}
	f := snap[ch.src]
	if f == nil {
		return
	}
	k := objKey(ch.ev.Object)
	if ch.ev.Type == api.EventDeleted {
		delete(f.objs, k)
		return
	}
	f.objs[k] = ch.ev.Object
}

// sse writes server-sent events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w)}
}

// send writes one event; data may span lines.
func (e *sse) send(event string, data []byte) error {
	var b bytes.Buffer
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	// A lone CR ends a line for the browser too: every line end becomes a
	// data line of its own, so no text can start a field of the stream.
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := e.w.Write(b.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *sse) comment() error {
	if _, err := e.w.Write([]byte(": keepalive\n\n")); err != nil {
		return err
	}
	return e.rc.Flush()
}

// keepAlive is how often a quiet event stream sends a comment, so proxies
// and the browser keep it open.
const keepAlive = 15 * time.Second

// live streams a view: its fragment rendered from a list of each source,
// then again after each burst of watched changes (gathered for
// Config.Debounce), as "render" events; "logout" when the session ends.
func (s *Server) live(v *view) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		q, err := v.parse(r)
		if err != nil {
			writeStatus(w, err)
			return
		}
		release, err := s.openStream(sess)
		if err != nil {
			writeStatus(w, err)
			return
		}
		defer release()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-sess.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		srcs := v.sources(q, sess)
		snap := snapshot{}
		changes := make(chan change, 256)
		for name, src := range srcs {
			f, rv := list(ctx, sess.c, src)
			snap[name] = f
			go follow(ctx, sess.c, name, src, f, rv, changes)
		}
		out := newSSE(w)
		var last []byte
		render := func() error {
			var b bytes.Buffer
			if err := s.tmpl.ExecuteTemplate(&b, v.name, s.viewData(ctx, v, q, sess, snap)); err != nil {
				return fmt.Errorf("render %s: %w", v.name, err)
			}
			if bytes.Equal(b.Bytes(), last) {
				return nil
			}
			last = b.Bytes()
			return out.send("render", last)
		}
		if err := render(); err != nil {
			s.log.Debug("dashboard live view ended", "view", v.name, "err", err)
			return
		}
		ping := time.NewTicker(keepAlive)
		defer ping.Stop()
		var debounce <-chan time.Time
		// A large page renders less often: the wait after a change is at
		// least four times the last render's cost, so one busy view takes
		// at most a fifth of a core.
		wait := s.cfg.Debounce
		for {
			select {
			case <-ctx.Done():
				select {
				case <-sess.done:
					_ = out.send("logout", []byte("session ended"))
				default:
				}
				return
			case ch := <-changes:
				snap.apply(ch)
				if debounce == nil {
					debounce = time.After(wait)
				}
			case <-debounce:
				debounce = nil
				began := time.Now()
				if err := render(); err != nil {
					s.log.Debug("dashboard live view ended", "view", v.name, "err", err)
					return
				}
				wait = max(s.cfg.Debounce, 4*time.Since(began))
			case <-ping.C:
				sess.touch()
				if err := out.comment(); err != nil {
					return
				}
			}
		}
	}
}
