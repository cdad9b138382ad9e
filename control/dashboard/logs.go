package dashboard

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// logTail is how many lines a log view starts with.
const logTail = 200

// logs streams a container's output as server-sent "line" events (each
// with its resume point as id, so a reconnecting browser continues where it
// stopped), after the pod is bound to a node; "wait" while it is not,
// "fail" with the API's refusal, "end" when the pod is gone.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, sess *session) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("name"), r.URL.Query().Get("container")
	if errs := api.ValidateName(namespaceKind, ns); len(errs) > 0 {
		writeStatus(w, badParam("namespace", "%s", strings.Join(errs, "; ")))
		return
	}
	if errs := api.ValidateName(podKind, name); len(errs) > 0 {
		writeStatus(w, badParam("name", "%s", strings.Join(errs, "; ")))
		return
	}
	if container != "" {
		if errs := validation.IsDNS1123Label(container); len(errs) > 0 {
			writeStatus(w, badParam("container", "%s", strings.Join(errs, "; ")))
			return
		}
	}
	var since uint64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			writeStatus(w, badParam("Last-Event-ID", "%q is not a log position", truncate(id, 32)))
			return
		}
		since = n
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
	out := newSSE(w)
	pod, err := s.waitBound(ctx, sess, ns, name, out)
	if err != nil {
		_ = out.send("fail", []byte(err.Error()))
		return
	}
	if ctx.Err() != nil {
		return
	}
	if container == "" && len(pod.Spec.Containers) > 1 {
		// The page shows the first container's log unless told otherwise
		// (kubectl would ask; its container links name the others).
		container = pod.Spec.Containers[0].Name
	}
	req := api.LogsRequest{Namespace: ns, Pod: name, Container: container, Follow: true, SinceSeq: since}
	if since == 0 {
		tail := logTail
		req.Tail = &tail
	}
	lines := make(chan client.LogLine, 256)
	errc := make(chan error, 1)
	go func() {
		errc <- sess.c.LogLines(ctx, req, func(l client.LogLine) error {
			select {
			case lines <- l:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		select {
		case l := <-lines:
			if err := s.sendLine(out, l); err != nil {
				return
			}
		case err := <-errc:
			// Lines read before the end are still in the channel.
			for {
				select {
				case l := <-lines:
					if s.sendLine(out, l) != nil {
						return
					}
					continue
				default:
				}
				break
			}
			if err != nil && ctx.Err() == nil {
				_ = out.send("fail", []byte(err.Error()))
				return
			}
			if ctx.Err() == nil {
				_ = out.send("end", []byte("the pod is gone"))
			}
			return
		case <-ping.C:
			sess.touch()
			if out.comment() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) sendLine(out *sse, l client.LogLine) error {
	if l.Seq > 0 {
		if _, err := out.w.Write([]byte("id: " + strconv.FormatUint(l.Seq+1, 10) + "\n")); err != nil {
			return err
		}
	}
	// One line per event; a line holding a newline or carriage return
	// (which SSE would split) is shown with them escaped.
	data := strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(strings.TrimRight(string(l.Data), "\n"))
	return out.send("line", []byte(data))
}

// waitBound returns the pod once it is bound to a node (the API serves
// its output from that node only), sending "wait" events meanwhile. It
// returns the API's refusal (404, 403) as it is.
func (s *Server) waitBound(ctx context.Context, sess *session, ns, name string, out *sse) (*api.Pod, error) {
	gctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	obj, err := sess.c.Get(gctx, "Pod", ns, name)
	cancel()
	if err != nil {
		return nil, err
	}
	if p := obj.(*api.Pod); p.Spec.NodeName != "" {
		return p, nil
	}
	_ = out.send("wait", []byte("waiting for the pod to be scheduled"))
	w, err := sess.c.WatchFrom(ctx, api.WatchRequest{Kind: "Pod", Namespace: ns, FieldSelector: "metadata.name=" + name,
		ResourceVersion: obj.GetObjectMeta().ResourceVersion})
	if err != nil {
		return nil, err
	}
	for ev := range w.Events() {
		if ev.Type == api.EventDeleted {
			return nil, api.NewNotFound("Pod", name)
		}
		if p := ev.Object.(*api.Pod); p.Spec.NodeName != "" {
			return p, nil
		}
	}
	if err := w.Err(); err != nil {
		return nil, err
	}
	return nil, ctx.Err()
}
