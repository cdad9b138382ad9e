package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
	if err == nil {
		r.Container, node, err = s.logContainer(r.Namespace, r.Pod, r.Container)
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
	s.serveStream(req, s.streams, "logs", func(ctx context.Context, st *stream) (string, error) {
		return s.runLogs(ctx, st, subject, tail, r.Follow, r.SinceSeq)
	})
}

// logContainer checks that the pod exists and has the container (an init
// container or not), and picks the pod's only container when none is named. It also returns the
// pod's node ("" while unbound).
func (s *Server) logContainer(ns, pod, container string) (string, string, error) {
	e := s.cache.get(podKind, ns, pod)
	if e == nil {
		return "", "", api.NewNotFound("Pod", pod)
	}
	p := e.obj.(*api.Pod)
	node := p.Spec.NodeName
	// An init container is named, never picked (as kubectl).
	for _, c := range p.Spec.InitContainers {
		if container != "" && c.Name == container {
			return container, node, nil
		}
	}
	var names []string
	for _, c := range p.Spec.Containers {
		if c.Name == container {
			return container, node, nil
		}
		names = append(names, c.Name)
	}
	if container != "" {
		return "", "", api.NewBadRequest("container: %q is not in pod %s", container, pod)
	}
	if len(names) != 1 {
		return "", "", api.NewBadRequest("container: pod %s has %d containers; choose one: %s", pod, len(names), strings.Join(names, ", "))
	}
	return names[0], node, nil
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
func (s *Server) runLogs(ctx context.Context, st *stream, subject string, tail int, follow bool, since uint64) (string, error) {
	stream, err := s.js.Stream(ctx, LogsStream)
	if err != nil {
		return "", fmt.Errorf("logs: open stream %s: %w", LogsStream, err)
	}
	lastAtStart := stream.CachedInfo().State.LastSeq
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	if since > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = since
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
