package node

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// event publishes one event of the worker's pod on
// kyb.podevents.<namespace>.<pod>, where the control plane's events stream
// keeps it. Fire and forget: an event is a record for people, not state,
// so a lost one (the connection is down) loses nothing the cluster needs.
func (w *podWorker) event(typ, reason, container, format string, args ...any) {
	pod, _ := w.snapshot()
	if pod == nil {
		return
	}
	b, err := json.Marshal(api.PodEvent{
		Time: time.Now().UTC(), Type: typ, Reason: reason, Container: container,
		Message: fmt.Sprintf(format, args...), Source: w.a.cfg.Name,
	})
	if err != nil {
		return
	}
	_ = w.a.nc.Publish(api.PodEventSubject(w.a.cfg.Name, pod.Namespace, pod.Name), b)
}

// pullProgress returns a progress callback for EnsureImage that reports a
// Pulling event at most once a second. Safe for concurrent use, as the
// runtime may call it from its own goroutines.
func (w *podWorker) pullProgress(container, image string) func(runtimes.PullProgress) {
	var (
		mu   sync.Mutex
		last time.Time
	)
	return func(p runtimes.PullProgress) {
		mu.Lock()
		now := time.Now()
		if now.Sub(last) < time.Second || (p.Total > 0 && p.Done >= p.Total) {
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
		w.event(api.EventTypeNormal, "Pulling", container, "%s", msg)
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
