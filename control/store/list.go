package store

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// consumerIdle is how long the server keeps a store consumer whose client
// vanished without deleting it.
const consumerIdle = 30 * time.Second

// subjectFilter is the stream subject filter of kind (every kind when nil),
// limited to one namespace when namespace is not empty.
func (s *Store) subjectFilter(kind *api.Kind, namespace string) string {
	if kind == nil {
		return s.prefix + ">"
	}
	if kind.Namespaced && namespace != "" {
		return s.prefix + kindToken(kind) + "." + escapeToken(namespace) + ".>"
	}
	return s.prefix + kindToken(kind) + ".>"
}

// deleteConsumer removes a finished consumer from the server in the
// background; the inactivity threshold is the fallback.
func (s *Store) deleteConsumer(c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil {
		return
	}
	name := info.Name
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.js.DeleteConsumer(ctx, s.streamName, name)
	}()
}

type rawEntry struct {
	idx  int
	seq  uint64
	data []byte
}

type decoded struct {
	idx int
	obj api.Object
}

// List returns the objects of kind matching opts, and the revision they were
// read at: a Watch from that revision misses no change after the list (it
// may repeat a change the list already holds). Objects come in the order of
// their last write, not sorted. A nil kind is a BadRequest.
//
// List reads the bucket's stream through one ordered consumer that delivers
// the last message of every subject of the kind (and namespace), decoding in
// parallel as messages arrive; it never lists keys one by one. Safe for
// concurrent use.
func (s *Store) List(ctx context.Context, kind *api.Kind, opts ListOptions) ([]api.Object, uint64, error) {
	defer metrics.ObserveStore("list", time.Now())
	if kind == nil {
		return nil, 0, api.NewBadRequest("list: kind: required")
	}
	if err := checkToken("namespace", opts.Namespace, MaxNamespaceLen); err != nil {
		return nil, 0, err
	}
	op := "list " + kind.Plural
	if opts.Namespace != "" && kind.Namespaced {
		op += " in " + opts.Namespace
	}
	// The stream's last sequence before the consumer exists: every message
	// of the kind up to it is in the consumer's last-per-subject snapshot.
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, 0, storeErr(op, err)
	}
	readAt := info.State.LastSeq

	cons, err := s.js.OrderedConsumer(ctx, s.streamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{s.subjectFilter(kind, opts.Namespace)},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, 0, storeErr(op, err)
	}

	prefilter := (opts.Labels != nil && !opts.Labels.Empty()) || (opts.Fields != nil && !opts.Fields.Empty())
	workers := runtime.GOMAXPROCS(0)
	raw := make(chan rawEntry, 1024)
	results := make([][]decoded, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var out []decoded
			var head objectHead
			for r := range raw {
				if prefilter {
					// Most objects fail a selector: read only the fields
					// selectors use, and decode the whole object on a match.
					head.reset()
					if err := gojson.Unmarshal(r.data, &head); err != nil {
						if errs[w] == nil {
							errs[w] = fmt.Errorf("decode stored %s at revision %d: %w", kindName(kind), r.seq, err)
						}
						continue
					}
					if !opts.matchesHead(kind, &head) {
						continue
					}
				}
				obj, err := s.decode(kind, r.data, r.seq)
				if err != nil {
					if errs[w] == nil {
						errs[w] = err
					}
					continue
				}
				// Without selectors everything matches; with them, the
				// head did.
				out = append(out, decoded{r.idx, obj})
			}
			results[w] = out
		})
	}

	var (
		mu       sync.Mutex
		n        int
		maxSeq   uint64
		finished bool
		done     = make(chan struct{})
	)
	finish := func() { // mu held
		if !finished {
			finished = true
			close(done)
		}
	}
	handler := func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		seq := md.Sequence.Stream
		maxSeq = max(maxSeq, seq)
		if !isMarker(msg.Headers()) {
			raw <- rawEntry{idx: n, seq: seq, data: msg.Data()}
			n++
		}
		if md.NumPending == 0 {
			finish()
		}
	}
	cc, err := cons.Consume(handler, jetstream.PullMaxMessages(4096))
	if err != nil {
		close(raw)
		wg.Wait()
		return nil, 0, storeErr(op, err)
	}
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		mu.Lock()
		finish()
		mu.Unlock()
	}
	var ctxErr error
	select {
	case <-done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}
	cc.Stop()
	s.deleteConsumer(cons)
	mu.Lock()
	finished = true
	close(raw)
	total := n
	mu.Unlock()
	wg.Wait()
	if ctxErr != nil {
		return nil, 0, storeErr(op, ctxErr)
	}
	for _, err := range errs {
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", op, err)
		}
	}
	// Put the matches back in delivery order.
	ordered := make([]api.Object, total)
	matched := 0
	for _, rs := range results {
		for _, d := range rs {
			ordered[d.idx] = d.obj
			matched++
		}
	}
	out := make([]api.Object, 0, matched)
	for _, o := range ordered {
		if o != nil {
			out = append(out, o)
		}
	}
	return out, max(readAt, maxSeq), nil
}

// kindName is the lower-case kind name for messages.
func kindName(k *api.Kind) string {
	if k == nil {
		return "objects"
	}
	return strings.ToLower(k.Name)
}

// objectHead is the part of a stored object that label and field selectors
// read.
type objectHead struct {
	Metadata struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		NodeName      string `json:"nodeName"`
		SchedulerName string `json:"schedulerName"`
		Unschedulable bool   `json:"unschedulable"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

func (h *objectHead) reset() { *h = objectHead{} }

// headOf is the objectHead of a live object, so that Matches and List's
// prefilter select by one table of fields.
func headOf(obj api.Object) objectHead {
	var h objectHead
	meta := obj.GetObjectMeta()
	h.Metadata.Name, h.Metadata.Namespace, h.Metadata.Labels = meta.Name, meta.Namespace, meta.Labels
	switch o := obj.(type) {
	case *api.Pod:
		h.Spec.NodeName, h.Spec.SchedulerName, h.Status.Phase = o.Spec.NodeName, o.Spec.SchedulerName, string(o.Status.Phase)
	case *api.Namespace:
		h.Status.Phase = o.Status.Phase
	case *api.Node:
		h.Spec.Unschedulable = o.Spec.Unschedulable
	}
	return h
}

// headFields exposes an objectHead to a fields.Selector without building a
// map: metadata.name and metadata.namespace of every kind, and per kind the
// fields Kubernetes lets select.
type headFields struct {
	kind string
	h    *objectHead
}

func (f headFields) get(field string) (string, bool) {
	switch field {
	case "metadata.name":
		return f.h.Metadata.Name, true
	case "metadata.namespace":
		return f.h.Metadata.Namespace, true
	}
	switch f.kind {
	case "Pod":
		switch field {
		case "spec.nodeName":
			return f.h.Spec.NodeName, true
		case "status.phase":
			return f.h.Status.Phase, true
		case "spec.schedulerName":
			return f.h.Spec.SchedulerName, true
		}
	case "Namespace":
		if field == "status.phase" {
			return f.h.Status.Phase, true
		}
	case "Node":
		if field == "spec.unschedulable" {
			return strconv.FormatBool(f.h.Spec.Unschedulable), true
		}
	}
	return "", false
}

func (f headFields) Has(field string) bool { _, ok := f.get(field); return ok }
func (f headFields) Get(field string) string {
	v, _ := f.get(field)
	return v
}

func (opts *ListOptions) matchesHead(kind *api.Kind, h *objectHead) bool {
	if opts.Labels != nil && !opts.Labels.Empty() && !opts.Labels.Matches(labels.Set(h.Metadata.Labels)) {
		return false
	}
	if opts.Fields != nil && !opts.Fields.Empty() && !opts.Fields.Matches(headFields{kind.Name, h}) {
		return false
	}
	return true
}
