package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/runtimes"
)

// newEventRecorder returns the agent's recorder: the kubelet of this node as
// source, each event sent through kyb.node.<name>.events, where the
// apiserver stores it if the pod is bound to this node.
func newEventRecorder(a *Agent) *record.Recorder {
	sink := record.SinkFunc(func(ctx context.Context, ev *api.Event) error {
		return a.request(ctx, api.NodeVerbEvents, ev, nil)
	})
	return record.New(sink, api.EventSource{Component: api.ComponentKubelet, Host: a.cfg.Name}, record.Options{}, a.log)
}

// event records an event of the worker's pod (about one of its containers
// when container is set), folded with its repeats by the agent's
// recorder. Fire and forget: an event is a record for people, not state,
// so a lost one (the connection is down) loses nothing the cluster needs.
func (w *podWorker) event(typ, reason, container, format string, args ...any) {
	pod, _ := w.snapshot()
	if pod == nil {
		return
	}
	ref := api.RefTo(pod)
	if container != "" {
		ref.FieldPath = "spec.containers{" + container + "}"
		for _, c := range pod.Spec.InitContainers {
			if c.Name == container {
				ref.FieldPath = "spec.initContainers{" + container + "}"
			}
		}
	}
	w.a.events.Eventf(ref, typ, reason, format, args...)
}

// pullProgressEvery is how often at most a pull reports its progress as
// an event. Each report is an event of its own (its message differs), and
// an object keeps a bounded number of events (control/events): a long pull
// must not push the pod's earlier events out.
const pullProgressEvery = 5 * time.Second

// pullProgress returns a progress callback for EnsureImage that reports a
// Pulling event at most every pullProgressEvery. Safe for concurrent use, as
// the runtime may call it from its own goroutines.
func (w *podWorker) pullProgress(container, image string) func(runtimes.PullProgress) {
	var (
		mu   sync.Mutex
		last time.Time
	)
	return func(p runtimes.PullProgress) {
		mu.Lock()
		now := time.Now()
		if now.Sub(last) < pullProgressEvery || (p.Total > 0 && p.Done >= p.Total) {
			mu.Unlock()
			return
		}
		last = now
		mu.Unlock()
		msg := fmt.Sprintf("Pulling image %q: %s", image, byteSize(p.Done))
		if p.Total > 0 {
			msg += " of " + byteSize(p.Total)
		}
		if p.Layers > 0 {
			msg += fmt.Sprintf(" (%d of %d layers)", p.LayersDone, p.Layers)
		}
		w.event(api.EventTypeNormal, api.ReasonPulling, container, "%s", msg)
	}
}

// byteSize prints n bytes as kubectl does in pull events (kB, MB, GB).
func byteSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
