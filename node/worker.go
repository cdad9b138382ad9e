package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Waiting reasons the agent reports (the runtimes add their own through
// runtimes.ReasonError: InvalidModule, ModuleNotFound, InvalidImageName, ...).
const (
	// ReasonUnknownRuntime fails a pod whose runtime class the node lacks.
	ReasonUnknownRuntime = "UnknownRuntime"
)

const defaultGrace = 30 * time.Second

// podWorker drives one pod. Desired state arrives through update (any
// goroutine); everything else belongs to the worker's goroutine.
type podWorker struct {
	a   *Agent
	uid string

	mu       sync.Mutex
	desired  *api.Pod
	rv       uint64
	gone     bool
	opCancel context.CancelFunc // cancels a long runtime call when the pod is deleted
	notify   chan struct{}
	// resend asks the next sync to report the status even if it did not
	// change since the last report (after a reconnect: the control plane
	// may have changed it meanwhile, as the node lifecycle controller
	// marks the pods of a silent node not ready).
	resend bool

	// owned by the worker goroutine
	log        *slog.Logger
	rtName     string
	rt         runtimes.Runtime
	sandbox    *runtimes.Sandbox
	sbBackoff  backoff
	inits      []*ctr
	ctrs       []*ctr
	exits      chan exitEvent
	probes     chan probeEvent
	done       chan struct{}
	startTime  *time.Time
	status     api.PodStatus // last computed
	lastSent   []byte
	terminal   bool      // Succeeded or Failed: nothing more is run
	frozen     bool      // completed before the agent started: report the status the control plane has
	syncedAt   time.Time // when the last sync started
	failReason string    // pod-level failure
	failMsg    string
	initFailed bool
	// cfgDirty (under mu) says a ConfigMap or Secret the pod references
	// changed; cfgMeta is the labels and annotations its downwardAPI files
	// were last written with (configvolumes.go).
	cfgDirty bool
	cfgMeta  string
	// firstSeen is when this agent first saw the pod (zero for a pod that
	// had started before, as an adopted one); startSeen once its start
	// latency was observed (pod_metrics.go).
	firstSeen time.Time
	startSeen bool
}

type exitEvent struct {
	name string
	id   string
	res  runtimes.ExitResult
}

// backoff is the state of one exponential delay (the project's one
// back-off type, retry.Backoff, decides the delays): how many failures,
// the last delay and the time before which nothing is retried.
type backoff struct {
	n     int
	delay time.Duration
	until time.Time
}

// next records one more failure at now: the next try waits base doubling
// up to maxd.
func (b *backoff) next(base, maxd time.Duration, now time.Time) {
	b.delay = retry.Backoff{Initial: base, Max: maxd, Factor: 2}.Delay(b.n)
	b.n++
	b.until = now.Add(b.delay)
}

// ctr is the worker's view of one container of the pod.
type ctr struct {
	spec     api.Container
	init     bool
	imageOK  bool
	imageRef string
	pullErrs int
	pull     backoff

	id        string // current runtime container, "" when none
	attempt   int32
	restarts  int32
	started   bool // the current container was started
	running   bool
	startedAt time.Time
	exit      *runtimes.ExitResult // set when the current container exited
	lastTerm  *api.ContainerStateTerminated
	crash     backoff
	respec    bool   // stopped because its spec changed: start again at once, whatever the policy
	waitR     string // waiting reason when not running
	waitM     string
	tail      *tailer
	termDir   string // the attempt's termination message: file termName beneath host dir termDir
	termName  string

	// Probes of the current attempt: the prober's cancel, whether the
	// startup probe succeeded and the readiness probe says ready, and why
	// a liveness or startup probe failed ("" when none did).
	probeCancel   context.CancelFunc
	startupOK     bool
	readyOK       bool
	unhealthy     string
	unhealthyKind probeKind
}

func newPodWorker(a *Agent, p *api.Pod, adopt *adopted) *podWorker {
	w := &podWorker{
		a:       a,
		uid:     p.UID,
		desired: p,
		rv:      resourceVersion(p),
		notify:  make(chan struct{}, 1),
		exits:   make(chan exitEvent, 16),
		probes:  make(chan probeEvent, 16),
		done:    make(chan struct{}),
		log:     a.log.With("pod", p.Namespace+"/"+p.Name, "uid", p.UID),
	}
	w.rtName = p.Spec.RuntimeClass()
	w.rt = a.rts[w.rtName]
	for _, c := range p.Spec.InitContainers {
		w.inits = append(w.inits, &ctr{spec: c, init: true})
	}
	for _, c := range p.Spec.Containers {
		w.ctrs = append(w.ctrs, &ctr{spec: c})
	}
	w.status = api.DeepCopy(p).Status
	if p.Status.StartTime != nil {
		t := *p.Status.StartTime
		w.startTime = &t
	} else if adopt == nil {
		w.firstSeen = time.Now()
	}
	// Restart counts and last states the control plane holds survive
	// anything the runtime forgot.
	for _, cs := range p.Status.ContainerStatuses {
		if c := w.find(cs.Name); c != nil {
			c.restarts = cs.RestartCount
			c.attempt = cs.RestartCount
			if cs.LastState.Terminated != nil {
				lt := *cs.LastState.Terminated
				c.lastTerm = &lt
			}
		}
	}
	if p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
		// It completed before (an agent restart): its reported status stands.
		w.terminal, w.frozen = true, true
	}
	w.adopt(adopt)
	return w
}

func (w *podWorker) find(name string) *ctr {
	for _, c := range w.all() {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (w *podWorker) all() []*ctr {
	out := make([]*ctr, 0, len(w.inits)+len(w.ctrs))
	return append(append(out, w.inits...), w.ctrs...)
}

// update hands the worker a new desired pod (nil with gone: keep the last
// one). It never blocks.
func (w *podWorker) update(p *api.Pod, gone bool) {
	w.mu.Lock()
	if p != nil {
		if rv := resourceVersion(p); rv == 0 || rv >= w.rv {
			w.desired, w.rv = p, rv
		}
	}
	if gone {
		w.gone = true
	}
	if (w.gone || w.desired.DeletionTimestamp != nil) && w.opCancel != nil {
		w.opCancel()
	}
	w.mu.Unlock()
	signal(w.notify)
}

// resendStatus makes the worker report its status again on its next
// sync, changed or not. It never blocks.
func (w *podWorker) resendStatus() {
	w.mu.Lock()
	w.resend = true
	w.mu.Unlock()
	signal(w.notify)
}

// takeResend reports (and clears) a pending resendStatus.
func (w *podWorker) takeResend() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.resend
	w.resend = false
	return r
}

func (w *podWorker) revision() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rv
}

func (w *podWorker) snapshot() (*api.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.desired, w.gone
}

// opContext returns a context for a runtime call that deletion cancels.
func (w *podWorker) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	octx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.opCancel = cancel
	if w.gone || w.desired.DeletionTimestamp != nil {
		cancel()
	}
	w.mu.Unlock()
	return octx, func() {
		w.mu.Lock()
		w.opCancel = nil
		w.mu.Unlock()
		cancel()
	}
}

func (w *podWorker) run(ctx context.Context) {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if finished := w.sync(ctx); finished {
			return
		}
		if ctx.Err() != nil {
			w.stopTailers(false)
			return
		}
		if wake := w.nextWake(); !wake.IsZero() {
			timer.Reset(max(time.Until(wake), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			w.stopTailers(false)
			return
		case <-w.notify:
		case ev := <-w.exits:
			w.onExit(ev)
		case ev := <-w.probes:
			w.onProbe(ev)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// nextWake is the earliest back-off expiry the worker waits for.
func (w *podWorker) nextWake() time.Time {
	var t time.Time
	earliest := func(u time.Time) {
		// Deadlines that were due when sync ran have been acted on.
		if u.After(w.syncedAt) && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if w.terminal {
		return t
	}
	if w.sandbox == nil {
		earliest(w.sbBackoff.until)
	}
	for _, c := range w.all() {
		if !c.imageOK {
			earliest(c.pull.until)
		}
		if !c.running {
			earliest(c.crash.until)
		}
	}
	return t
}

// sync moves the pod one step towards its desired state and reports the
// status. It returns true when the worker is done (pod deleted).
func (w *podWorker) sync(ctx context.Context) bool {
	pod, gone := w.snapshot()
	if gone || pod.DeletionTimestamp != nil {
		w.terminate(ctx, pod, gone)
		return true
	}
	if w.takeResend() {
		w.lastSent = nil
	}
	if w.terminal {
		if w.lastSent == nil {
			w.report(pod, false)
		}
		w.release(ctx)
		return false
	}
	if w.rt == nil {
		w.terminal = true
		w.failReason = ReasonUnknownRuntime
		w.failMsg = fmt.Sprintf("runtime class %q is not available on node %s", w.rtName, w.a.cfg.Name)
		w.report(pod, false)
		return false
	}
	w.applySpecChanges(ctx, pod)
	w.applyConfigChanges(ctx, pod)
	now := time.Now()
	w.syncedAt = now
	if w.startTime == nil {
		t := now.UTC().Truncate(time.Second)
		w.startTime = &t
	}
	if w.lastSent == nil {
		w.report(pod, false) // Pending (ContainerCreating) before the runtime is asked anything
	}
	d := desiredPod{restartPolicy: pod.Spec.RestartPolicy}
	for {
		acts := plan(d, w.observe(pod, now))
		created := false
		for _, a := range acts {
			w.execute(ctx, pod, a)
			created = created || (a.kind == actCreateSandbox && w.sandbox != nil)
		}
		if !created {
			break
		}
		// The sandbox is there: plan its containers in the same pass.
	}
	st := w.computeStatus(pod)
	w.report(pod, false)
	if st.Phase == api.PodSucceeded || st.Phase == api.PodFailed {
		w.terminal = true
		w.release(ctx)
	}
	return false
}

// release frees what a pod that completed (Succeeded or Failed) holds in
// its runtime, as the kubelet does: its sandbox, with the pod IP and host
// ports. Its status, logs and volumes stay until the pod is deleted. On
// failure the sandbox is left for the deletion to remove.
func (w *podWorker) release(ctx context.Context) {
	if w.sandbox == nil || w.rt == nil {
		return
	}
	w.stopTailers(true)
	if err := w.rt.RemoveSandbox(ctx, w.sandbox.ID); err != nil {
		w.log.Warn("release the sandbox of a completed pod", "err", err)
		return
	}
	w.log.Info("pod completed; sandbox released")
	w.sandbox = nil
}

func (w *podWorker) createSandbox(ctx context.Context, pod *api.Pod) {
	cfg := &runtimes.SandboxConfig{
		Namespace: pod.Namespace,
		Name:      pod.Name,
		UID:       pod.UID,
		Hostname:  pod.Spec.Hostname,
		Labels:    map[string]string{LabelPodUID: pod.UID, LabelPodNamespace: pod.Namespace, LabelPodName: pod.Name},
		// HostNetwork reaches here only where pod security admission allowed it.
		HostNetwork: pod.Spec.HostNetwork,
	}
	if cfg.Hostname == "" {
		cfg.Hostname = pod.Name
	}
	cfg.DNS = podDNS(pod, w.a.cfg.ClusterDNS, w.a.cfg.ClusterDomain, readHostResolv(w.a.cfg.ResolvConf))
	cfg.WAGIMaxConcurrency = api.WAGIMaxConcurrency(pod.Annotations)
	cfg.PodCIDR = *w.a.podCIDR.Load()
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				cfg.Ports = append(cfg.Ports, portMapping(p))
			}
		}
	}
	octx, done := w.opContext(ctx)
	defer done()
	sb, err := w.rt.CreateSandbox(octx, cfg)
	if err != nil {
		w.log.Warn("create sandbox", "err", err)
		w.sbBackoff.next(w.a.cfg.BackoffBase, w.a.cfg.BackoffMax, time.Now())
		for _, c := range w.all() {
			c.waitR, c.waitM = runtimes.ReasonOf(err, runtimes.ReasonCreatePodSandboxError), err.Error()
		}
		return
	}
	w.sandbox = sb
	w.sbBackoff = backoff{}
	for _, c := range w.all() {
		if c.waitR == runtimes.ReasonCreatePodSandboxError {
			c.waitR, c.waitM = "", ""
		}
	}
}

// applySpecChanges takes the containers' new images (the one change a pod
// update may make to them). As the kubelet does, a running container whose
// image changed is stopped (with the pod's grace period) and started again
// with the new image at once, whatever the restart policy; an exited one
// uses the new image if it is restarted.
func (w *podWorker) applySpecChanges(ctx context.Context, pod *api.Pod) {
	update := func(cs []*ctr, specs []api.Container) {
		for i, c := range cs {
			if i >= len(specs) || specs[i].Name != c.spec.Name || specs[i].Image == c.spec.Image {
				continue
			}
			w.log.Info("container image changed; restarting it", "container", c.spec.Name, "from", c.spec.Image, "to", specs[i].Image)
			c.spec = specs[i]
			c.imageOK, c.imageRef, c.pull, c.pullErrs = false, "", backoff{}, 0
			if c.waitR == runtimes.ReasonErrImagePull || c.waitR == runtimes.ReasonImagePullBackOff {
				c.waitR, c.waitM = "", ""
			}
			if !c.running {
				continue
			}
			octx, done := w.opContext(ctx)
			if err := w.stopContainer(octx, c, gracePeriod(pod)); err != nil {
				w.log.Warn("stop container for its new image", "container", c.spec.Name, "err", err)
			}
			done()
			res := runtimes.ExitResult{ExitCode: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, FinishedAt: time.Now().UTC()}
			if st, err := w.rt.ContainerStatus(ctx, c.id); err == nil && st.State == runtimes.ContainerExited {
				res = exitOf(st)
				res.Reason = reasonOrByCode(res)
			} else if err == nil {
				continue // still running (the stop was cancelled by a deletion)
			}
			c.running, c.exit, c.respec = false, &res, true
			w.readTermination(c)
			c.stopProbes()
			c.readyOK, c.unhealthy = false, ""
			if c.tail != nil {
				c.tail.finish()
			}
		}
	}
	update(w.inits, pod.Spec.InitContainers)
	update(w.ctrs, pod.Spec.Containers)
}

// shouldRestart says whether an exited container runs again.
func shouldRestart(policy api.RestartPolicy, init bool, code int32) bool {
	switch policy {
	case api.RestartPolicyNever:
		return false
	case api.RestartPolicyOnFailure:
		return code != 0
	}
	if init {
		return code != 0
	}
	return true
}

// observe is the worker's state as plan sees it.
func (w *podWorker) observe(pod *api.Pod, now time.Time) observedPod {
	o := observedPod{now: now, name: pod.Name, sandbox: w.sandbox != nil, sandboxUntil: w.sbBackoff.until}
	for _, c := range w.inits {
		o.inits = append(o.inits, c.observe())
	}
	for _, c := range w.ctrs {
		o.ctrs = append(o.ctrs, c.observe())
	}
	return o
}

func (c *ctr) observe() observedCtr {
	oc := observedCtr{
		name: c.spec.Name, running: c.running, respec: c.respec, imageOK: c.imageOK,
		pullUntil: c.pull.until, crashUntil: c.crash.until, crashDelay: c.crash.delay,
		startFailed: c.waitR != "" && c.waitR != runtimes.ReasonErrImagePull && c.waitR != runtimes.ReasonImagePullBackOff,
		unhealthy:   c.unhealthy,
	}
	if c.exit != nil {
		oc.exited, oc.exitCode = true, c.exit.ExitCode
	}
	return oc
}

// execute performs one action of a plan.
func (w *podWorker) execute(ctx context.Context, pod *api.Pod, a action) {
	if a.kind == actCreateSandbox {
		w.createSandbox(ctx, pod)
		return
	}
	c := w.find(a.container)
	if c == nil {
		return
	}
	switch a.kind {
	case actInitFailed:
		w.initFailed = true
	case actBackOff:
		if c.waitR != a.reason { // entering the back-off, not each sync within it
			w.event(api.EventTypeWarning, api.ReasonBackOff, c.spec.Name, "Back-off restarting failed container %s", c.spec.Name)
		}
		c.waitR, c.waitM = a.reason, a.message
	case actPull:
		w.pullImage(ctx, c)
	case actStart:
		if c.imageOK { // else the pull before it failed
			w.start(ctx, pod, c)
		}
	case actKill:
		w.killUnhealthy(ctx, pod, c, a)
	}
}

// killUnhealthy stops a running container whose liveness or startup probe
// failed, as the kubelet does: within the probe's
// terminationGracePeriodSeconds (the pod's when unset), recording the
// probe's failure as the message of its termination; it restarts as its
// pod's restart policy says, after its back-off.
func (w *podWorker) killUnhealthy(ctx context.Context, pod *api.Pod, c *ctr, a action) {
	grace := gracePeriod(pod)
	probe := c.spec.LivenessProbe
	if c.unhealthyKind == probeStartup {
		probe = c.spec.StartupProbe
	}
	if probe != nil && probe.TerminationGracePeriodSeconds != nil && pod.DeletionTimestamp == nil {
		grace = time.Duration(*probe.TerminationGracePeriodSeconds) * time.Second
	}
	then := "will be restarted"
	if !shouldRestart(pod.Spec.RestartPolicy, c.init, runtimes.ExitCodeKilled) {
		then = "will not be restarted (restartPolicy " + string(pod.Spec.RestartPolicy) + ")"
	}
	kind := strings.ToLower(c.unhealthyKind.String())
	w.log.Info("killing an unhealthy container", "container", c.spec.Name, "probe", kind, "msg", a.message, "grace", grace)
	w.event(api.EventTypeNormal, api.ReasonKilling, c.spec.Name, "Container %s failed %s probe, %s", c.spec.Name, kind, then)
	c.stopProbes()
	octx, done := w.opContext(ctx)
	if err := w.stopContainer(octx, c, grace); err != nil {
		w.log.Warn("stop an unhealthy container", "container", c.spec.Name, "err", err)
	}
	done()
	res := runtimes.ExitResult{ExitCode: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, FinishedAt: time.Now().UTC()}
	if st, err := w.rt.ContainerStatus(ctx, c.id); err == nil && st.State == runtimes.ContainerExited {
		res = exitOf(st)
		res.Reason = reasonOrByCode(res)
	} else if err == nil {
		return // still running (the stop was cancelled by a deletion)
	}
	res.Message = a.message
	c.running, c.exit, c.unhealthy, c.readyOK = false, &res, "", false
	w.readTermination(c)
	if c.tail != nil {
		c.tail.finish()
	}
	if res.FinishedAt.Sub(c.startedAt) >= w.a.cfg.BackoffReset {
		c.crash = backoff{}
	}
	c.crash.next(w.a.cfg.BackoffBase, w.a.cfg.BackoffMax, res.FinishedAt)
}

func (w *podWorker) pullImage(ctx context.Context, c *ctr) {
	octx, done := w.opContext(ctx)
	began := time.Now()
	if c.pullErrs == 0 {
		w.event(api.EventTypeNormal, api.ReasonPulling, c.spec.Name, "Pulling image %q", c.spec.Image)
	}
	img, err := w.ensureImage(octx, c, w.pullProgress(c.spec.Name, c.spec.Image))
	done()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.pullErrs++
		c.pull.next(w.a.cfg.BackoffBase, w.a.cfg.BackoffMax, time.Now())
		r := runtimes.ReasonOf(err, runtimes.ReasonErrImagePull)
		if r == runtimes.ReasonErrImagePull && c.pullErrs > 1 {
			r = runtimes.ReasonImagePullBackOff
		}
		c.waitR, c.waitM = r, fmt.Sprintf("pull %s: %v", c.spec.Image, err)
		w.log.Info("image not ready", "container", c.spec.Name, "image", c.spec.Image, "reason", r, "err", err, "retry", c.pull.delay)
		w.event(api.EventTypeWarning, api.ReasonFailed, c.spec.Name, "Failed to pull image %q (%s): %v", c.spec.Image, r, err)
		return
	}
	c.imageOK, c.pull, c.pullErrs = true, backoff{}, 0
	c.waitR, c.waitM = "", ""
	if img != nil {
		c.imageRef = img.Digest
		w.event(api.EventTypeNormal, api.ReasonPulled, c.spec.Name, "Image %q ready in %v (%s, %s)", c.spec.Image, time.Since(began).Round(time.Millisecond), byteSize(img.Size), img.Digest)
	}
}

// start creates and starts the next attempt of c.
func (w *podWorker) start(ctx context.Context, pod *api.Pod, c *ctr) {
	fail := func(reason string, err error) {
		c.waitR, c.waitM = runtimes.ReasonOf(err, reason), err.Error()
		c.crash.next(w.a.cfg.BackoffBase, w.a.cfg.BackoffMax, time.Now())
		w.log.Warn("start container", "container", c.spec.Name, "reason", c.waitR, "err", err)
		w.event(api.EventTypeWarning, api.ReasonFailed, c.spec.Name, "%s: %v", c.waitR, err)
	}
	if c.exit != nil {
		// A restart: the exited attempt becomes the last termination state.
		c.lastTerm = w.terminated(c)
		if c.id != "" {
			_ = w.rt.RemoveContainer(ctx, c.id)
		}
		if c.attempt > 0 {
			if old, err := w.logPath(c.spec.Name, c.attempt-1); err == nil {
				_ = os.Remove(old)
				_ = os.Remove(old + offsetSuffix)
			}
		}
		c.id, c.exit, c.started = "", nil, false
		c.attempt++
		c.restarts++
	}
	cfg, err := w.containerConfig(ctx, pod, c)
	if err != nil {
		fail(runtimes.ReasonCreateContainerConfigError, err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(cfg.LogPath), 0o755); err != nil {
		fail(runtimes.ReasonCreateContainerConfigError, fmt.Errorf("create log dir: %w", err))
		return
	}
	if c.id == "" {
		id, err := w.rt.CreateContainer(ctx, w.sandbox.ID, cfg)
		if err != nil {
			fail(runtimes.ReasonCreateContainerError, err)
			return
		}
		c.id = id
	}
	if err := w.rt.StartContainer(ctx, c.id); err != nil {
		_ = w.rt.RemoveContainer(ctx, c.id)
		c.id = ""
		fail(runtimes.ReasonRunContainerError, err)
		return
	}
	c.started, c.running, c.respec = true, true, false
	c.startupOK, c.readyOK, c.unhealthy = false, false, ""
	c.startedAt = time.Now().UTC()
	c.waitR, c.waitM = "", ""
	w.event(api.EventTypeNormal, api.ReasonStarted, c.spec.Name, "Started container %s", c.spec.Name)
	// As kubelet: probes and the exit watch begin once postStart returned;
	// a container it killed is then seen exiting, and restarted as its
	// restart policy says.
	w.postStart(ctx, pod, c)
	w.watch(ctx, pod, c, cfg.LogPath)
}

// watch waits for c's exit in a goroutine and starts tailing its log.
func (w *podWorker) watch(ctx context.Context, pod *api.Pod, c *ctr, logPath string) {
	id, name := c.id, c.spec.Name
	c.tail = w.a.logs.tail(ctx, pod, name, c.attempt, logPath)
	w.startProbes(ctx, c)
	w.a.wg.Go(func() {
		for {
			ch, err := w.rt.WaitContainer(ctx, id)
			var res runtimes.ExitResult
			if err != nil {
				res = runtimes.ExitResult{Err: err}
			} else {
				select {
				case res = <-ch:
				case <-ctx.Done():
					return
				}
			}
			if res.Err != nil && ctx.Err() == nil {
				// Waiting failed, not the container: look again.
				st, serr := w.rt.ContainerStatus(ctx, id)
				switch {
				case serr == nil && st.State == runtimes.ContainerRunning:
					t := time.NewTimer(time.Second)
					select {
					case <-t.C:
						continue
					case <-ctx.Done():
						t.Stop()
						return
					case <-w.done:
						t.Stop()
						return
					}
				case serr == nil && st.State == runtimes.ContainerExited:
					res = exitOf(st)
				case errors.Is(serr, runtimes.ErrNotFound):
					res = runtimes.ExitResult{ExitCode: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, Message: "container vanished", FinishedAt: time.Now()}
				}
			}
			select {
			case w.exits <- exitEvent{name: name, id: id, res: res}:
			case <-w.done:
			case <-ctx.Done():
			}
			return
		}
	})
}

// onExit records that a container exited and schedules its restart.
func (w *podWorker) onExit(ev exitEvent) {
	c := w.find(ev.name)
	if c == nil || c.id != ev.id || !c.running {
		return
	}
	res := ev.res
	if res.FinishedAt.IsZero() {
		res.FinishedAt = time.Now()
	}
	res.FinishedAt = res.FinishedAt.UTC()
	res.Reason = reasonOrByCode(res)
	c.running = false
	c.exit = &res
	w.readTermination(c)
	c.stopProbes()
	c.readyOK, c.unhealthy = false, ""
	if c.tail != nil {
		c.tail.finish()
	}
	ran := res.FinishedAt.Sub(c.startedAt)
	if ran >= w.a.cfg.BackoffReset {
		c.crash = backoff{}
	}
	if res.Reason != runtimes.ReasonAgentRestarted {
		c.crash.next(w.a.cfg.BackoffBase, w.a.cfg.BackoffMax, res.FinishedAt)
	} // else: the process that ran it (a wasm host) ended, not the container: run it again at once, as adopt does
	w.log.Info("container exited", "container", c.spec.Name, "exitCode", res.ExitCode, "reason", res.Reason, "attempt", c.attempt)
	typ := api.EventTypeNormal
	if res.ExitCode != 0 {
		typ = api.EventTypeWarning
	}
	w.event(typ, "Exited", c.spec.Name, "Container %s exited with code %d (%s)", c.spec.Name, res.ExitCode, res.Reason)
}

// stopTailers ends every log tailer; with drain, after a last read, which
// it waits up to 2 s per tailer for.
func (w *podWorker) stopTailers(drain bool) {
	for _, c := range w.all() {
		if c.tail != nil {
			if drain {
				c.tail.finish()
			} else {
				c.tail.abort()
			}
		}
	}
	if !drain {
		return
	}
	for _, c := range w.all() {
		if c.tail != nil {
			c.tail.wait(2 * time.Second)
		}
	}
}

// gracePeriod is how long containers get to stop on deletion.
func gracePeriod(pod *api.Pod) time.Duration {
	switch {
	case pod == nil:
		return defaultGrace
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultGrace
}

// terminate stops every container within the grace period, removes the
// sandbox and the pod's directory, and (for a pod marked for deletion, not
// one already gone) reports the final status with Finalized.
func (w *podWorker) terminate(ctx context.Context, pod *api.Pod, gone bool) {
	grace := max(gracePeriod(pod), 0)
	w.log.Info("stopping pod", "grace", grace, "gone", gone)
	w.event(api.EventTypeNormal, api.ReasonKilling, "", "Stopping the pod's containers (grace period %v)", grace)
	for _, c := range w.all() {
		c.stopProbes()
		c.readyOK = false
	}
	if w.rt != nil {
		var wg sync.WaitGroup
		for _, c := range w.all() {
			if c.id == "" || !c.running {
				continue
			}
			wg.Go(func() {
				if err := w.stopContainer(ctx, c, grace); err != nil {
					w.log.Warn("stop container", "container", c.spec.Name, "err", err)
				}
			})
		}
		wg.Wait()
		for _, c := range w.all() {
			if c.id == "" || !c.running {
				continue
			}
			res := runtimes.ExitResult{ExitCode: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, FinishedAt: time.Now()}
			if st, err := w.rt.ContainerStatus(ctx, c.id); err == nil && st.State == runtimes.ContainerExited {
				res = exitOf(st)
			}
			c.running, c.exit = false, &res
			if c.exit.Reason == "" {
				c.exit.Reason = runtimes.ReasonFailed
			}
			w.readTermination(c)
		}
		w.stopTailers(true)
		if w.sandbox != nil {
			delay := 100 * time.Millisecond
			for {
				err := w.rt.RemoveSandbox(ctx, w.sandbox.ID)
				if err == nil {
					break
				}
				w.log.Warn("remove sandbox; retrying", "err", err, "in", delay)
				t := time.NewTimer(delay)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				delay = min(delay*2, 10*time.Second)
			}
			w.sandbox = nil
		}
	}
	if err := w.a.removePodDir(w.uid); err != nil {
		w.log.Warn("remove pod dir", "err", err)
	}
	if !gone && pod != nil {
		for _, c := range w.all() {
			c.waitR, c.waitM = "", ""
		}
		w.report(pod, true)
	}
	w.log.Info("pod stopped and removed")
}

// adopt takes over what the runtime still held of the pod at agent start:
// the newest attempt of each container is kept (and watched if running),
// everything else is removed.
func (w *podWorker) adopt(ad *adopted) {
	if ad == nil || w.rt == nil {
		return
	}
	w.sandbox = ad.sandbox
	ctx := w.a.ctx
	newest := map[string]*runtimes.ContainerStatus{}
	for _, cs := range ad.containers {
		name := cs.Name
		if name == "" {
			name = cs.Labels[LabelContainer]
		}
		if w.find(name) == nil {
			w.log.Info("removing container not in the pod spec", "container", cs.ID, "name", name)
			_ = w.rt.StopContainer(ctx, cs.ID, 0)
			_ = w.rt.RemoveContainer(ctx, cs.ID)
			continue
		}
		if old := newest[name]; old != nil {
			if old.Attempt > cs.Attempt {
				old, cs = cs, old
			}
			_ = w.rt.StopContainer(ctx, old.ID, 0)
			_ = w.rt.RemoveContainer(ctx, old.ID)
		}
		newest[name] = cs
	}
	pod := w.desired
	anyMain := false
	for name, cs := range newest {
		c := w.find(name)
		if cs.State == runtimes.ContainerCreated || cs.State == 0 {
			_ = w.rt.RemoveContainer(ctx, cs.ID)
			c.attempt = max(c.attempt, cs.Attempt)
			continue
		}
		if !c.init {
			anyMain = true
		}
		c.id, c.attempt, c.imageOK, c.started = cs.ID, cs.Attempt, true, true
		c.restarts = max(c.restarts, cs.Attempt)
		c.imageRef = cs.ImageRef
		c.startedAt = cs.StartedAt.UTC()
		// The runtime's word on the log file is taken only when the file is
		// in the pod's directory: the tailer writes an offset file beside it.
		logPath, err := w.logPath(name, cs.Attempt)
		if err != nil {
			w.log.Warn("adopt: no log file for the container; its output is not published", "container", name, "err", err)
		} else if cs.LogPath != "" && filepath.Dir(filepath.Clean(cs.LogPath)) == filepath.Dir(logPath) {
			logPath = cs.LogPath
		}
		switch cs.State {
		case runtimes.ContainerRunning:
			c.running = true
			w.watch(ctx, pod, c, logPath)
		case runtimes.ContainerExited:
			res := exitOf(cs)
			res.Reason = reasonOrByCode(res)
			c.exit = &res
			if res.Reason != runtimes.ReasonAgentRestarted {
				c.crash.next(w.a.cfg.BackoffBase, w.a.cfg.BackoffMax, res.FinishedAt)
			} // else: it did not crash; it may run again at once
			c.tail = w.a.logs.tail(ctx, pod, name, cs.Attempt, logPath)
			c.tail.finish()
		}
	}
	if anyMain {
		// Kubernetes: main containers only ever ran after the init containers succeeded.
		for _, c := range w.inits {
			if c.exit == nil || c.exit.ExitCode != 0 {
				c.exit = &runtimes.ExitResult{ExitCode: 0, Reason: runtimes.ReasonCompleted}
				c.imageOK = true
			}
		}
	}
}
