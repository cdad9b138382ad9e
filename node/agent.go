package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/node/services"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Labels the agent puts on sandboxes and containers, so that it can find
// its pods in the runtimes after a restart.
const (
	LabelPodUID       = "kyb.dev/pod-uid"
	LabelPodNamespace = "kyb.dev/pod-namespace"
	LabelPodName      = "kyb.dev/pod-name"
	LabelContainer    = "kyb.dev/container-name"
)

// Agent is a node agent. Create it with New and run it with Run; Run may be
// called once. Its methods are safe for concurrent use.
type Agent struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	rts map[string]runtimes.Runtime
	log *slog.Logger

	nodeIP   string
	hostname string
	sysInfo  api.NodeSystemInfo // what does not change while the agent runs; Runtimes unset
	reporter *reporter
	logs     *logPublisher
	started  chan struct{} // closed once the first sync has been reconciled
	rereg    chan struct{} // the control plane lost the Node: register again
	ready    chan struct{} // closed once registered and synced the first time

	ctx context.Context // Run's context; workers run under it
	wg  sync.WaitGroup  // workers and tailers

	nodeMu sync.Mutex

	// svc is the node's copy of the Services and EndpointSlices, fed by
	// its services watch: the proxy, the DNS server and the service
	// environment variables read it (servicesrun.go, services.go).
	svc      *services.Cache
	node     api.Node // as last sent
	nodeSent time.Time

	mu         sync.Mutex
	workers    map[string]*podWorker  // by pod UID
	tombstones map[string]tombstone   // pods removed by a DELETED assignment
	podCIDR    atomic.Pointer[string] // from Config, else from the registered Node
	// events records the pods' events (events.go), sent through
	// kyb.node.<name>.events.
	events *record.Recorder
	// configs fetches the ConfigMaps and Secrets the pods use (configs.go).
	configs *configs
}

// New checks cfg, fills its defaults and returns an agent that speaks on nc
// and runs pods on rts, keyed by runtime class ("wasm", "containerd"). It
// creates cfg.DataDir. The agent does not own nc: it neither closes it nor
// changes its handlers (it listens to status changes with StatusChanged).
func New(cfg Config, nc *nats.Conn, rts map[string]runtimes.Runtime, log *slog.Logger) (*Agent, error) {
	if nc == nil {
		return nil, errors.New("new node agent: nats connection is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("new node agent: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "pods"), 0o755); err != nil {
		return nil, fmt.Errorf("new node agent: create data dir: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("new node agent: jetstream: %w", err)
	}
	for class, rt := range rts {
		if rt == nil {
			return nil, fmt.Errorf("new node agent: runtime %q is nil", class)
		}
	}
	a := &Agent{
		cfg:        cfg,
		nc:         nc,
		js:         js,
		rts:        maps.Clone(rts),
		log:        log.With("node", cfg.Name),
		nodeIP:     internalIP(),
		started:    make(chan struct{}),
		rereg:      make(chan struct{}, 1),
		ready:      make(chan struct{}),
		workers:    map[string]*podWorker{},
		tombstones: map[string]tombstone{},
		svc:        services.NewCache(),
	}
	if a.cfg.ServiceEnv == nil {
		a.cfg.ServiceEnv = a.ServiceEnv
	}
	a.hostname, _ = os.Hostname()
	a.sysInfo = api.NodeSystemInfo{
		MachineID:       machineID(),
		KernelVersion:   readTrim("/proc/sys/kernel/osrelease"),
		OSImage:         osImage(),
		OperatingSystem: runtime.GOOS,
		Architecture:    runtime.GOARCH,
		AgentVersion:    cfg.AgentVersion,
	}
	a.podCIDR.Store(&cfg.PodCIDR)
	a.reporter = newReporter(a)
	a.logs = &logPublisher{a: a}
	a.events = newEventRecorder(a)
	a.configs = newConfigs(a)
	return a, nil
}

// Name returns the node name the agent registers under.
func (a *Agent) Name() string { return a.cfg.Name }

// Ready is closed once the agent has registered, synced and adopted or
// created its pods for the first time.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run registers the node, syncs and runs the pods bound to it until ctx is
// done. Pods keep running when Run returns (as they do when the agent
// restarts). It returns nil when ctx is cancelled, and an error when the
// NATS connection is closed for good (it never gives up while nats.go is
// reconnecting).
func (a *Agent) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	a.ctx = ctx
	statusCh := a.nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	defer a.nc.RemoveStatusListener(statusCh)

	sub, err := a.nc.Subscribe(api.AgentSubject(a.cfg.Name, api.AgentVerbPods), a.onAssignment)
	if err != nil {
		return fmt.Errorf("run node agent %s: subscribe to assignments: %w", a.cfg.Name, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)
	volSub, err := a.subscribeVolumeDelete()
	if err != nil {
		return fmt.Errorf("run node agent %s: %w", a.cfg.Name, err)
	}
	defer func() { _ = volSub.Unsubscribe() }()
	stopExec, err := a.serveExec(ctx)
	if err != nil {
		return fmt.Errorf("run node agent %s: %w", a.cfg.Name, err)
	}
	defer stopExec()

	a.refreshNode(ctx)

	var bg sync.WaitGroup
	bg.Go(func() { a.reporter.run(ctx) })
	bg.Go(func() { a.beatLoop(ctx) })
	bg.Go(func() { a.configs.run(ctx, a.cfg.ConfigResync) })
	bg.Go(func() { a.runServices(ctx) })
	bg.Go(func() { a.statsLoop(ctx) })

	// connect: register, (flush), sync, reconcile; retried until it works.
	retry := time.NewTimer(0)
	defer retry.Stop()
	delay := 100 * time.Millisecond
	first := true
	for {
		select {
		case <-ctx.Done():
			bg.Wait()
			a.wg.Wait()
			return nil
		case st := <-statusCh:
			if st == nats.CLOSED || a.nc.IsClosed() {
				cancel()
				bg.Wait()
				a.wg.Wait()
				return fmt.Errorf("run node agent %s: nats connection closed; pods keep running", a.cfg.Name)
			}
			if st != nats.CONNECTED {
				a.log.Info("lost connection to the control plane; pods keep running")
				continue
			}
			a.log.Info("reconnected to the control plane")
			a.reporter.flushNow()
			delay = 100 * time.Millisecond
			retry.Reset(0)
		case <-a.rereg:
			a.log.Warn("the control plane does not know this node; registering again")
			retry.Reset(0)
		case <-retry.C:
			if err := a.connect(ctx, first); err != nil {
				a.log.Warn("register and sync failed; retrying", "err", err, "in", delay)
				retry.Reset(delay)
				delay = min(delay*2, 10*time.Second)
				continue
			}
			if first {
				first = false
				close(a.ready)
			}
		}
	}
}

// connect registers the node and reconciles with a fresh sync list.
func (a *Agent) connect(ctx context.Context, first bool) error {
	if err := a.register(ctx); err != nil {
		return err
	}
	var ps api.PodSync
	if err := a.request(ctx, api.NodeVerbSync, struct{}{}, &ps); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if first {
		a.recover(ctx, &ps)
		close(a.started)
	} else {
		a.reconcile(&ps)
	}
	return nil
}

// register sends the current Node and takes the pod CIDR from the reply.
func (a *Agent) register(ctx context.Context) error {
	a.refreshNode(ctx)
	a.nodeMu.Lock()
	n := a.node
	a.nodeMu.Unlock()
	var stored api.Node
	if err := a.request(ctx, api.NodeVerbRegister, &n, &stored); err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.Name, err)
	}
	a.nodeMu.Lock()
	a.nodeSent = time.Now()
	a.nodeMu.Unlock()
	if a.cfg.PodCIDR == "" && stored.Spec.PodCIDR != "" {
		a.podCIDR.Store(&stored.Spec.PodCIDR)
	}
	return nil
}

// request sends body on kyb.node.<name>.<verb> and decodes the reply into
// out. An error reply (micro error headers or a Status body with a code)
// becomes an *api.Status.
func (a *Agent) request(ctx context.Context, verb string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", verb, err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	msg, err := a.nc.RequestWithContext(ctx, api.NodeSubject(a.cfg.Name, verb), data)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
		st := &api.Status{}
		if json.Unmarshal(msg.Data, st) != nil || st.Message == "" {
			c, _ := strconv.Atoi(code)
			st = &api.Status{Code: c, Reason: api.ReasonInternal, Message: msg.Header.Get("Nats-Service-Error")}
		}
		return fmt.Errorf("%s: %w", verb, st)
	}
	var st api.Status
	if json.Unmarshal(msg.Data, &st) == nil && st.Code >= 400 && st.Reason != "" {
		return fmt.Errorf("%s: %w", verb, &st)
	}
	if out != nil {
		if err := json.Unmarshal(msg.Data, out); err != nil {
			return fmt.Errorf("%s: decode reply: %w", verb, err)
		}
	}
	return nil
}

// refreshNode rebuilds the Node from fresh readings and reports whether a
// condition or the set of usable runtimes changed.
func (a *Agent) refreshNode(ctx context.Context) bool {
	var advertised []api.NodeRuntime
	var msgs []string
	for _, class := range slices.Sorted(maps.Keys(a.rts)) {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := a.rts[class].Info(ictx)
		cancel()
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: %v", class, err))
			continue
		}
		advertised = append(advertised, api.NodeRuntime{Name: class, Version: info.Version})
		msgs = append(msgs, class+" "+info.Version)
	}
	r := readMachine(a.cfg.DataDir)
	now := time.Now().UTC().Truncate(time.Second)

	a.nodeMu.Lock()
	defer a.nodeMu.Unlock()
	n := &a.node
	n.TypeMeta = api.TypeMeta{APIVersion: "v1", Kind: "Node"}
	n.Name = a.cfg.Name
	n.Labels = map[string]string{
		"kubernetes.io/hostname": a.cfg.Name,
		"kubernetes.io/os":       runtime.GOOS,
		"kubernetes.io/arch":     runtime.GOARCH,
	}
	maps.Copy(n.Labels, a.cfg.Labels)
	n.Annotations = map[string]string{api.AnnotationVolumesDir: a.volumesDir()}
	n.Spec.Taints = a.cfg.Taints
	n.Spec.PodCIDR = a.cfg.PodCIDR
	cpu := int64(runtime.NumCPU()) * 1000
	capacity := api.ResourceList{
		api.ResourceCPU:      milli(cpu),
		api.ResourceMemory:   binary(r.memTotal),
		api.ResourcePods:     count(a.cfg.MaxPods),
		api.ResourceWasmPods: count(a.cfg.MaxWasmPods),
	}
	memReserve := min(a.cfg.ReservedMemory, r.memTotal/10)
	alloc := api.ResourceList{
		api.ResourceCPU:      milli(max(cpu-a.cfg.ReservedCPUMilli, 0)),
		api.ResourceMemory:   binary(max(r.memTotal-memReserve, 0)),
		api.ResourcePods:     count(a.cfg.MaxPods),
		api.ResourceWasmPods: count(a.cfg.MaxWasmPods),
	}
	if r.diskTotal > 0 {
		capacity[api.ResourceEphemeralStorage] = binary(r.diskTotal)
		alloc[api.ResourceEphemeralStorage] = binary(r.diskTotal)
	}
	n.Status.Capacity, n.Status.Allocatable = capacity, alloc
	n.Status.Addresses = []api.NodeAddress{{Type: api.NodeInternalIP, Address: a.nodeIP}, {Type: api.NodeHostName, Address: a.hostname}}
	runtimesChanged := !slices.Equal(n.Status.NodeInfo.Runtimes, advertised)
	n.Status.NodeInfo = a.sysInfo
	n.Status.NodeInfo.Runtimes = advertised
	// Copies of the node handed out share slices with it: change a fresh one.
	n.Status.Conditions = slices.Clone(n.Status.Conditions)
	condChanged := mergeConditions(&n.Status, conditions(r, len(advertised) > 0, strings.Join(msgs, ", ")), now)
	return condChanged || runtimesChanged
}

// beatLoop sends heartbeats and, every StatusInterval or when a condition
// changes, the node status.
func (a *Agent) beatLoop(ctx context.Context) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		if err := a.request(ctx, api.NodeVerbHeartbeat, api.Heartbeat{Time: time.Now().UTC()}, nil); err != nil && ctx.Err() == nil {
			a.log.Debug("heartbeat failed", "err", err)
			if api.IsNotFound(err) {
				signal(a.rereg) // the Node was deleted: register (and sync) again
			}
		}
		changed := a.refreshNode(ctx)
		a.nodeMu.Lock()
		due := changed || time.Since(a.nodeSent) >= a.cfg.StatusInterval
		st := a.node.Status
		a.nodeMu.Unlock()
		if due {
			if err := a.request(ctx, api.NodeVerbStatus, &st, nil); err != nil {
				if ctx.Err() == nil {
					a.log.Debug("node status failed", "err", err)
				}
			} else {
				a.nodeMu.Lock()
				a.nodeSent = time.Now()
				a.nodeMu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onAssignment handles one message on kyb.agent.<name>.pods.
func (a *Agent) onAssignment(m *nats.Msg) {
	as, err := decodeAssignment(m.Data)
	if err != nil {
		a.log.Warn("bad assignment", "err", err)
		return
	}
	// A removal only stops what runs under that uid here, whichever node
	// the pod names (a pod that moved away is removed on its former node),
	// so its uid is all that is checked.
	gone := as.Type == api.EventDeleted
	if gone && !validUID(as.Pod.UID) {
		a.log.Warn("refusing a removal: bad pod uid", "pod", clip(as.Pod.Namespace)+"/"+clip(as.Pod.Name), "uid", clip(as.Pod.UID))
		return
	}
	select {
	case <-a.started:
	case <-a.ctx.Done():
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !gone && !a.admitLocked(&as.Pod) {
		return
	}
	a.applyLocked(&as.Pod, gone)
}

// tombstone remembers a removed pod so that a stale update cannot bring it
// back.
type tombstone struct {
	rv uint64
	at time.Time
}

// tombstoneTTL is how long a tombstone is kept when no sync clears it.
const tombstoneTTL = 10 * time.Minute

func (a *Agent) buryLocked(uid string, rv uint64) {
	now := time.Now()
	if len(a.tombstones) >= 1024 {
		for k, t := range a.tombstones {
			if now.Sub(t.at) > tombstoneTTL {
				delete(a.tombstones, k)
			}
		}
	}
	a.tombstones[uid] = tombstone{rv: rv, at: now}
}

func resourceVersion(p *api.Pod) uint64 {
	v, _ := strconv.ParseUint(p.ResourceVersion, 10, 64)
	return v
}

// applyLocked hands a desired pod (or its removal) to its worker, starting
// one if needed. Updates older than what the worker has are ignored.
func (a *Agent) applyLocked(p *api.Pod, gone bool) {
	rv := resourceVersion(p)
	if t, ok := a.tombstones[p.UID]; ok && (rv == 0 || rv <= t.rv) {
		return
	}
	w := a.workers[p.UID]
	if gone {
		a.buryLocked(p.UID, rv)
		a.reporter.drop(p.UID)
		if w != nil {
			w.update(p, true)
		}
		return
	}
	if w == nil {
		if a.ctx.Err() != nil {
			return // Run is ending: no new worker may outlive its wait
		}
		a.startWorkerLocked(p, nil)
		return
	}
	w.update(p, false)
}

// reconcile applies a sync list: every listed pod is updated (and its
// worker reports its status again), every worker
// whose pod is not listed (and not newer than the list) is removed.
func (a *Agent) reconcile(ps *api.PodSync) {
	a.mu.Lock()
	defer a.mu.Unlock()
	listed := make(map[string]bool, len(ps.Pods))
	for i := range ps.Pods {
		p := &ps.Pods[i]
		if !listable(p, a.cfg.Name) {
			a.log.Warn("sync: ignoring a pod not bound here or without a sane uid", "pod", clip(p.Namespace)+"/"+clip(p.Name), "uid", clip(p.UID))
			continue
		}
		listed[p.UID] = true
		if a.admitLocked(p) {
			if w := a.workers[p.UID]; w != nil {
				// The control plane may have changed the pod's status
				// while this agent was away (marked it not ready when
				// the node went silent): say again what is true.
				w.resendStatus()
			}
			a.applyLocked(p, false)
		}
	}
	for uid, w := range a.workers {
		if listed[uid] {
			continue
		}
		if rv := w.revision(); ps.Revision != 0 && rv > ps.Revision {
			continue // assigned after the list was read
		}
		a.buryLocked(uid, w.revision())
		a.reporter.drop(uid)
		w.update(nil, true)
	}
	// Forget tombstones of pods the control plane no longer knows.
	for uid := range a.tombstones {
		if !listed[uid] && a.workers[uid] == nil {
			delete(a.tombstones, uid)
		}
	}
}

// startWorkerLocked starts the worker of pod p, adopting what a runtime
// still holds of it.
func (a *Agent) startWorkerLocked(p *api.Pod, adopt *adopted) *podWorker {
	w := newPodWorker(a, p, adopt)
	a.workers[p.UID] = w
	a.wg.Go(func() {
		w.run(a.ctx)
		a.mu.Lock()
		if a.workers[p.UID] == w {
			delete(a.workers, p.UID)
		}
		a.mu.Unlock()
	})
	return w
}

// adopted is what a runtime still holds of a pod at agent start.
type adopted struct {
	runtime    string
	sandbox    *runtimes.Sandbox
	containers []*runtimes.ContainerStatus
}

// recover matches what the runtimes hold to the first sync list: it adopts
// the sandboxes of listed pods, removes every other sandbox and container,
// and starts a worker per listed pod.
func (a *Agent) recover(ctx context.Context, ps *api.PodSync) {
	// Only admitted pods are adopted and started; what a refused pod left
	// in a runtime (an older agent admitted it) is removed as an orphan.
	listed := map[string]*api.Pod{}
	a.mu.Lock()
	for i := range ps.Pods {
		p := &ps.Pods[i]
		if !listable(p, a.cfg.Name) {
			a.log.Warn("sync: ignoring a pod not bound here or without a sane uid", "pod", clip(p.Namespace)+"/"+clip(p.Name), "uid", clip(p.UID))
			continue
		}
		if a.admitLocked(p) {
			listed[p.UID] = p
		}
	}
	a.mu.Unlock()
	found := map[string]*adopted{}
	var wg sync.WaitGroup
	for _, class := range slices.Sorted(maps.Keys(a.rts)) {
		rt := a.rts[class]
		log := a.log.With("runtime", class)
		sbs, err := rt.ListSandboxes(ctx)
		if err != nil {
			log.Error("recover: list sandboxes; cannot adopt or remove what this runtime holds", "err", err)
			continue
		}
		ctrs, err := rt.ListContainers(ctx, "")
		if err != nil {
			log.Error("recover: list containers", "err", err)
		}
		bySandbox := map[string][]*runtimes.ContainerStatus{}
		for _, c := range ctrs {
			bySandbox[c.SandboxID] = append(bySandbox[c.SandboxID], c)
		}
		for _, sb := range sbs {
			uid := sb.UID
			if uid == "" {
				uid = sb.Labels[LabelPodUID]
			}
			p := listed[uid]
			if p != nil && p.Spec.RuntimeClass() == class && found[uid] == nil && sb.State != runtimes.SandboxNotReady {
				found[uid] = &adopted{runtime: class, sandbox: sb, containers: bySandbox[sb.ID]}
				log.Info("adopting sandbox", "pod", p.Namespace+"/"+p.Name, "sandbox", sb.ID, "containers", len(bySandbox[sb.ID]))
				delete(bySandbox, sb.ID)
				continue
			}
			delete(bySandbox, sb.ID)
			log.Info("removing orphan sandbox", "sandbox", sb.ID, "pod", sb.Namespace+"/"+sb.Name, "uid", uid)
			wg.Go(func() {
				if err := rt.RemoveSandbox(ctx, sb.ID); err != nil {
					log.Error("remove orphan sandbox", "sandbox", sb.ID, "err", err)
				}
				if uid != "" && listed[uid] == nil {
					if err := a.removePodDir(uid); err != nil {
						log.Warn("remove the directory of an orphan sandbox", "sandbox", sb.ID, "err", err)
					}
				}
			})
		}
		for _, cs := range bySandbox {
			for _, c := range cs {
				log.Info("removing orphan container", "container", c.ID)
				wg.Go(func() {
					_ = rt.StopContainer(ctx, c.ID, 0)
					if err := rt.RemoveContainer(ctx, c.ID); err != nil {
						log.Error("remove orphan container", "container", c.ID, "err", err)
					}
				})
			}
		}
	}
	wg.Wait()
	// Pod directories of pods no longer bound here.
	if ents, err := os.ReadDir(a.podsDir()); err == nil {
		for _, e := range ents {
			if listed[e.Name()] == nil {
				if err := a.removePodDir(e.Name()); err != nil {
					a.log.Warn("recover: remove the directory of a pod no longer bound here", "err", err)
				}
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, p := range listed {
		a.startWorkerLocked(p, found[uid])
	}
}

// PodCount returns how many pods the agent runs workers for.
func (a *Agent) PodCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.workers)
}
