package node

import (
	"time"

	"github.com/kybernetes/kybernetes/internal/metrics"
)

// observeStart records the pod's start latency (kyb_node_pod_start_duration_seconds)
// the first time every regular container of the pod has been started (it
// may have exited since: a short job counts too): the time since the agent
// first saw the pod, as the kubelet's pod_start_duration_seconds. Worker
// goroutine only.
func (w *podWorker) observeStart() {
	if w.startSeen || w.firstSeen.IsZero() || len(w.ctrs) == 0 {
		return
	}
	for _, c := range w.ctrs {
		if !c.started && !c.running {
			return
		}
	}
	w.startSeen = true
	metrics.ObservePodStart(w.rtName, time.Since(w.firstSeen))
}
