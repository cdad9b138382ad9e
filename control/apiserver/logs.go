package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// checkLabel returns a 400 naming field when v is not a DNS-1123 label
// (what a namespace, pod or container name is): such a value never
// becomes part of a subject.
func checkLabel(field, v string) error {
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		if len(v) > 80 {
			v = v[:80] + "..."
		}
		return api.NewBadRequest("%s: %q: %s", field, v, strings.Join(errs, "; "))
	}
	return nil
}

// checkPodRef checks the namespace ("" is "default", which it returns) and
// name of a pod a request refers to.
func checkPodRef(ns, pod string) (string, error) {
	if ns == "" {
		ns = api.DefaultNamespace
	}
	err := checkLabel("namespace", ns)
	if err == nil {
		err = checkLabel("pod", pod)
	}
	return ns, err
}

func (s *Server) handleLogs(req micro.Request) {
	var r api.LogsRequest
	if err := decodeBody(req.Data(), &r, "LogsRequest"); err != nil {
		syncErr(req, err)
		return
	}
	var err error
	r.Namespace, err = checkPodRef(r.Namespace, r.Pod)
	if err == nil && r.Container != "" {
		err = checkLabel("container", r.Container)
	}
	// Every request needs the pod (a follow ends once it is deleted, at its
	// next resume), and picks its only container when none is named.
	var node string
	var restarts int32
	if err == nil {
		r.Container, node, restarts, err = s.logContainer(r.Namespace, r.Pod, r.Container)
	}
	if err == nil && r.Previous {
		if r.Follow {
			err = api.NewBadRequest("previous: the previous attempt's output cannot be followed (it has ended)")
		} else if restarts == 0 {
			err = api.NewBadRequest("previous terminated container %q in pod %q not found", r.Container, r.Pod)
		}
	}
	if err == nil {
		err = s.authorize(req, api.VerbGet, "pods/log", r.Namespace, r.Pod)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	tail := -1
	if r.Tail != nil && *r.Tail >= 0 && r.SinceSeq == 0 {
		tail = *r.Tail
	}
	// Only the node the pod is bound to may write its output (a node may
	// publish only beneath its own name): no other node's lines count. An
	// unbound pod has none yet; a follow finds its node at its next resume.
	if node == "" {
		node = "_unbound"
	}
	subject := api.LogSubject(node, r.Namespace, r.Pod, r.Container)
	opts := logsOptions{tail: tail, follow: r.Follow, since: r.SinceSeq}
	if r.SinceSeq == 0 && r.SinceTime != nil {
		opts.sinceTime = *r.SinceTime
	}
	if r.Previous {
		opts.attempt = strconv.Itoa(int(restarts - 1))
	}
	s.serveStream(req, s.streams, "logs", func(ctx context.Context, st *stream) (string, error) {
		return s.runLogs(ctx, st, subject, opts)
	})
}

// logContainer checks that the pod exists and has the container (an init
// container or not), and picks the pod's only container when none is
// named. It also returns the pod's node ("" while unbound) and the
// container's restart count.
func (s *Server) logContainer(ns, pod, container string) (name, node string, restarts int32, err error) {
	e := s.cache.get(podKind, ns, pod)
	if e == nil {
		return "", "", 0, api.NewNotFound("Pod", pod)
	}
	p := e.obj.(*api.Pod)
	node = p.Spec.NodeName
	restartsOf := func(name string) int32 {
		for _, list := range [][]api.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, cs := range list {
				if cs.Name == name {
					return cs.RestartCount
				}
			}
		}
		return 0
	}
	// An init container is named, never picked (as kubectl).
	for _, c := range p.Spec.InitContainers {
		if container != "" && c.Name == container {
			return container, node, restartsOf(container), nil
		}
	}
	var names []string
	for _, c := range p.Spec.Containers {
		if c.Name == container {
			return container, node, restartsOf(container), nil
		}
		names = append(names, c.Name)
	}
	if container != "" {
		return "", "", 0, api.NewBadRequest("container: %q is not in pod %s", container, pod)
	}
	if len(names) != 1 {
		return "", "", 0, api.NewBadRequest("container: pod %s has %d containers; choose one: %s", pod, len(names), strings.Join(names, ", "))
	}
	return names[0], node, restartsOf(names[0]), nil
}

// logsOptions select the lines runLogs sends.
type logsOptions struct {
	tail      int    // the last tail lines of those there are now; -1: all
	follow    bool   // then new ones as they come
	since     uint64 // from this stream sequence (a resume point)
	sinceTime time.Time
	attempt   string // only the lines of this container attempt (Kyb-Attempt); "": all
}

// logLine is one line read from the logs stream.
type logLine struct {
	seq  uint64
	data []byte
	hdr  nats.Header // the agent's Kyb-* headers (stdout or stderr, attempt, time)
}

// header returns the headers of a line's data message: the agent's
// Kyb-* headers and the line's sequence.
func (l logLine) header() nats.Header {
	h := nats.Header{api.StreamSeqHeader: []string{strconv.FormatUint(l.seq, 10)}}
	for k, v := range l.hdr {
		if strings.HasPrefix(k, "Kyb-") && k != api.StreamHeader && k != api.StreamSeqHeader {
			h[k] = v
		}
	}
	return h
}

// runLogs sends the lines of subject from the logs stream: from sequence
// since, or (since 0) the last tail of those there are now (all when tail <
// 0); then, when follow, every new line until ctx ends. It returns the
// sequence to resume from, or "" when done.
func (s *Server) runLogs(ctx context.Context, st *stream, subject string, o logsOptions) (string, error) {
	tail, follow, since := o.tail, o.follow, o.since
	stream, err := s.js.Stream(ctx, LogsStream)
	if err != nil {
		return "", fmt.Errorf("logs: open stream %s: %w", LogsStream, err)
	}
	lastAtStart := stream.CachedInfo().State.LastSeq
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	if since > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = since
	} else if !o.sinceTime.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &o.sinceTime
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("logs: consumer on %s: %w", subject, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("logs: consumer on %s: %w", subject, err)
	}
	next := max(since, 1) // the sequence to resume from
	resume := func() (string, error) { return strconv.FormatUint(next, 10), nil }
	sendLine := func(l logLine) error {
		err := st.send(l.header(), l.data)
		next = l.seq + 1
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return "", fmt.Errorf("logs: read %s: %w", subject, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	read := func() (logLine, error) {
		msg, err := it.Next()
		if err != nil {
			return logLine{}, err
		}
		md, err := msg.Metadata()
		if err != nil {
			return logLine{}, err
		}
		return logLine{seq: md.Sequence.Stream, data: msg.Data(), hdr: msg.Headers()}, nil
	}
	if o.attempt != "" {
		return s.sendAttempt(ctx, st, subject, info.NumPending, read, o.attempt, tail)
	}
	// Catch up on what there is now: skip all but the last tail lines
	// (counted, so nothing is held in memory), send the rest.
	pending := info.NumPending
	var skip uint64
	if tail >= 0 && uint64(tail) < pending {
		skip = pending - uint64(tail)
	}
	for ; pending > 0; pending-- {
		l, err := read()
		if err != nil {
			if ctx.Err() != nil {
				return resume()
			}
			return "", fmt.Errorf("logs: read %s: %w", subject, err)
		}
		if skip > 0 {
			skip--
			next = l.seq + 1
			continue
		}
		if err := sendLine(l); err != nil {
			if !errors.Is(err, errWindow) {
				return "", err
			}
			if pending > 1 || follow {
				return resume()
			}
		}
	}
	next = max(next, lastAtStart+1)
	if !follow {
		return "", nil
	}
	for {
		l, err := read()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return resume()
			}
			return "", fmt.Errorf("logs: follow %s: %w", subject, err)
		}
		if err := sendLine(l); err != nil {
			if errors.Is(err, errWindow) {
				return resume()
			}
			return "", err
		}
	}
}

// sendAttempt sends the lines of one container attempt among the pending
// ones (a previous attempt's: it has ended, so it is not followed), the
// last tail of them when tail >= 0 (held in a ring of that size; other
// lines are never held).
func (s *Server) sendAttempt(ctx context.Context, st *stream, subject string, pending uint64, read func() (logLine, error), attempt string, tail int) (string, error) {
	var ring []logLine
	next := 0 // where the ring's next line goes once it is full
	for ; pending > 0; pending-- {
		l, err := read()
		if err != nil {
			if ctx.Err() != nil {
				return "", nil
			}
			return "", fmt.Errorf("logs: read %s: %w", subject, err)
		}
		if l.hdr.Get(api.LogAttemptHeader) != attempt {
			continue
		}
		switch {
		case tail < 0:
			if err := st.send(l.header(), l.data); err != nil {
				return resumeAfter(l, err)
			}
		case tail == 0:
		case len(ring) < tail:
			ring = append(ring, l)
		default:
			ring[next] = l
			next = (next + 1) % tail
		}
	}
	for i := range ring {
		l := ring[(next+i)%len(ring)]
		if err := st.send(l.header(), l.data); err != nil {
			// The rest of the ring is every line of the attempt after l.
			return resumeAfter(l, err)
		}
	}
	return "", nil
}

// resumeAfter is the resume point after l when a send filled the
// stream's window, or err.
func resumeAfter(l logLine, err error) (string, error) {
	if errors.Is(err, errWindow) {
		return strconv.FormatUint(l.seq+1, 10), nil
	}
	return "", err
}
