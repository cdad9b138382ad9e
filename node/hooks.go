package node

import (
	"context"
	"fmt"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Lifecycle hooks run through the probe machinery (execProbe, httpProbe),
// so a hook reaches a container exactly as a probe does, in both runtimes.

// minPreStopGrace is what is left of the grace period for the stop signal
// when a preStop hook used it all, as kubelet's minimum of 2 seconds.
const minPreStopGrace = 2 * time.Second

// hookTarget is what c's hooks reach: c in its runtime and the pod's address.
func (w *podWorker) hookTarget(c *ctr) probeTarget {
	t := probeTarget{rt: w.rt, id: c.id, host: w.a.nodeIP, wasm: w.rtName == api.RuntimeWasm, ports: c.spec.Ports}
	if w.sandbox != nil && w.sandbox.IP != "" {
		t.host = w.sandbox.IP
	}
	return t
}

// runHook runs one hook against t and returns why it failed, or "". ctx
// bounds it (a hook has no timeout of its own, as in Kubernetes: the
// grace period bounds a preStop hook, a deletion a postStart hook).
func runHook(ctx context.Context, h *api.LifecycleHandler, t probeTarget) string {
	// The probes take a timeout for their messages; a hook's is ctx's.
	timeout := time.Duration(1<<62 - 1)
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	var ok bool
	var msg string
	switch {
	case h.Exec != nil:
		ok, msg = execProbe(ctx, h.Exec, timeout, t)
	case h.HTTPGet != nil:
		ok, msg = httpProbe(ctx, h.HTTPGet, timeout, t)
	case h.Sleep != nil:
		tm := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer tm.Stop()
		select {
		case <-tm.C:
			return ""
		case <-ctx.Done():
			return "" // cut short by the grace period or a deletion: not a failure
		}
	default:
		return "the hook has no handler"
	}
	if ok {
		return ""
	}
	if ctx.Err() != nil && msg == "" {
		msg = ctx.Err().Error()
	}
	return msg
}

// postStart runs c's postStart hook, if any, right after c started. On a
// failure it records FailedPostStartHook and kills c (running its preStop
// hook first, as kubelet does); the exit is then reported as any other.
// It returns whether the hook failed.
func (w *podWorker) postStart(ctx context.Context, pod *api.Pod, c *ctr) bool {
	if c.spec.Lifecycle == nil || c.spec.Lifecycle.PostStart == nil {
		return false
	}
	octx, done := w.opContext(ctx)
	msg := runHook(octx, c.spec.Lifecycle.PostStart, w.hookTarget(c))
	done()
	if msg == "" {
		return false
	}
	w.log.Warn("postStart hook failed; killing the container", "container", c.spec.Name, "msg", msg)
	w.event(api.EventTypeWarning, runtimes.ReasonFailedPostStartHook, c.spec.Name, "PostStartHook failed: %s", msg)
	octx, done = w.opContext(ctx)
	if err := w.stopContainer(octx, c, gracePeriod(pod)); err != nil {
		w.log.Warn("stop container after its postStart hook failed", "container", c.spec.Name, "err", err)
	}
	done()
	return true
}

// stopContainer runs c's preStop hook, if any, within grace, then stops c
// with what is left of grace (at least minPreStopGrace when the hook used
// it all). A failed hook is recorded (FailedPreStopHook) and c is stopped
// anyway. It reads only c's spec and id, so calls for several containers
// may run at once.
func (w *podWorker) stopContainer(ctx context.Context, c *ctr, grace time.Duration) error {
	if c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil && grace > 0 {
		start := time.Now()
		hctx, cancel := context.WithTimeout(ctx, grace)
		msg := runHook(hctx, c.spec.Lifecycle.PreStop, w.hookTarget(c))
		expired := hctx.Err() == context.DeadlineExceeded
		cancel()
		if expired {
			msg = fmt.Sprintf("the hook did not end within the grace period (%v)", grace)
		}
		if msg != "" {
			w.log.Warn("preStop hook failed", "container", c.spec.Name, "msg", msg)
			w.event(api.EventTypeWarning, runtimes.ReasonFailedPreStopHook, c.spec.Name, "PreStopHook failed: %s", msg)
		}
		grace = max(grace-time.Since(start), minPreStopGrace)
	}
	return w.rt.StopContainer(ctx, c.id, grace)
}
