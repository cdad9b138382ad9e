package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// memCluster is real in-memory cluster state with revisions and
// compare-and-set writes; every change is sent on events the way a store
// watch delivers it. It is the Binder and StatusWriter of the tests.
type memCluster struct {
	mu     sync.Mutex
	rev    uint64
	pods   map[string]*api.Pod
	nodes  map[string]*api.Node
	events chan store.Event
	sent   uint64
	binds  map[string]int
	hold   bool          // when set, echoes of writes are held back
	held   []store.Event // until release
	nbinds int
	want   int // when nbinds reaches want, done is closed
	done   chan struct{}
}

func newMemCluster(buf int) *memCluster {
	return &memCluster{pods: map[string]*api.Pod{}, nodes: map[string]*api.Node{},
		events: make(chan store.Event, buf), binds: map[string]int{}}
}

func (m *memCluster) emitLocked(typ store.EventType, o api.Object, echo bool) {
	ev := store.Event{Type: typ, Object: o, Revision: m.rev}
	if echo && m.hold {
		m.held = append(m.held, ev)
		return
	}
	m.sent++
	m.events <- ev
}

func (m *memCluster) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hold = false
	for _, ev := range m.held {
		m.sent++
		m.events <- ev
	}
	m.held = nil
}

func (m *memCluster) synced() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent++
	m.events <- store.Event{Type: store.Synced}
}

func (m *memCluster) stamp(meta *api.ObjectMeta) {
	m.rev++
	meta.ResourceVersion = strconv.FormatUint(m.rev, 10)
	if meta.UID == "" {
		meta.UID = fmt.Sprintf("uid-%d", m.rev)
	}
}

func (m *memCluster) putNode(n *api.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	typ := store.Added
	if _, ok := m.nodes[n.Name]; ok {
		typ = store.Modified
	}
	m.stamp(&n.ObjectMeta)
	m.nodes[n.Name] = n
	m.emitLocked(typ, n, false)
}

func (m *memCluster) deleteNode(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.nodes[name]
	delete(m.nodes, name)
	m.rev++
	m.emitLocked(store.Deleted, n, false)
}

// putPod creates or replaces a pod (a user's or agent's write).
func (m *memCluster) putPod(p *api.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	key := podKey(p)
	typ := store.Added
	if old, ok := m.pods[key]; ok {
		typ = store.Modified
		p.UID = old.UID
	}
	m.stamp(&p.ObjectMeta)
	m.pods[key] = p
	m.emitLocked(typ, p, false)
}

func (m *memCluster) deletePod(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := "default/" + name
	p := m.pods[key]
	delete(m.pods, key)
	m.rev++
	m.emitLocked(store.Deleted, p, false)
}

func (m *memCluster) pod(name string) *api.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pods["default/"+name]
}

func (m *memCluster) cas(pod *api.Pod, mutate func(*api.Pod)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := podKey(pod)
	cur := m.pods[key]
	if cur == nil {
		return api.NewNotFound("Pod", pod.Name)
	}
	if cur.ResourceVersion != pod.ResourceVersion {
		return api.NewConflict("Pod", pod.Name, "the object has been modified")
	}
	cp := copyPod(cur)
	mutate(cp)
	m.stamp(&cp.ObjectMeta)
	m.pods[key] = cp
	m.emitLocked(store.Modified, cp, true)
	return nil
}

func (m *memCluster) Bind(ctx context.Context, pod *api.Pod, node string) error {
	return m.cas(pod, func(p *api.Pod) {
		p.Spec.NodeName = node
		p.Status.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionTrue})
		m.binds[podKey(p)]++
		m.nbinds++
		if m.nbinds == m.want && m.done != nil {
			close(m.done)
		}
	})
}

func (m *memCluster) SetUnschedulable(ctx context.Context, pod *api.Pod, msg string) error {
	return m.cas(pod, func(p *api.Pod) {
		p.Status.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionFalse,
			Reason: api.ReasonUnschedulable, Message: msg})
	})
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// harness runs one scheduler over a memCluster.
type harness struct {
	*memCluster
	s *Scheduler
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	m := newMemCluster(1 << 16)
	s := NewWith(cfg, m, m, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunEvents(ctx, m.events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunEvents: %v", err)
		}
	})
	return &harness{memCluster: m, s: s}
}

// idle waits until the scheduler has handled every event sent and has
// nothing queued or in flight, and returns its state then.
func (h *harness) idle(t *testing.T) snapshot {
	t.Helper()
	var snap snapshot
	testutil.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := h.s.core.waitIdle(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		sent := h.sent
		h.mu.Unlock()
		if s.events != sent || s.queued != 0 || s.inFlight != 0 {
			return fmt.Errorf("not idle: handled %d of %d events, %d queued, %d in flight", s.events, sent, s.queued, s.inFlight)
		}
		snap = s
		return nil
	})
	return snap
}

func (h *harness) nodeOf(t *testing.T, pod string) string {
	t.Helper()
	p := h.pod(pod)
	if p == nil {
		t.Fatalf("pod %s not found", pod)
	}
	return p.Spec.NodeName
}

func (h *harness) unschedulableMessage(t *testing.T, pod string) string {
	t.Helper()
	p := h.pod(pod)
	c := p.Status.Condition(api.PodScheduled)
	if c == nil || c.Status != api.ConditionFalse || c.Reason != api.ReasonUnschedulable {
		t.Fatalf("pod %s: PodScheduled condition %+v, want False/Unschedulable (node %q)", pod, c, p.Spec.NodeName)
	}
	return c.Message
}

// ---- object builders ----

type nodeOpt func(*api.Node)

func mkNode(name, cpu, mem string, opts ...nodeOpt) *api.Node {
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}}
	n.Status.Allocatable = api.ResourceList{
		api.ResourceCPU:      resource.MustParse(cpu),
		api.ResourceMemory:   resource.MustParse(mem),
		api.ResourcePods:     resource.MustParse("110"),
		api.ResourceWasmPods: resource.MustParse("1000"),
	}
	n.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue}}
	n.Status.NodeInfo.Runtimes = []api.NodeRuntime{{Name: api.RuntimeContainerd}, {Name: api.RuntimeWasm}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func runtimes(names ...string) nodeOpt {
	return func(n *api.Node) {
		n.Status.NodeInfo.Runtimes = nil
		for _, r := range names {
			n.Status.NodeInfo.Runtimes = append(n.Status.NodeInfo.Runtimes, api.NodeRuntime{Name: r})
		}
	}
}

func labels(kv ...string) nodeOpt {
	return func(n *api.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func taint(key, value string, effect api.TaintEffect) nodeOpt {
	return func(n *api.Node) {
		n.Spec.Taints = append(n.Spec.Taints, api.Taint{Key: key, Value: value, Effect: effect})
	}
}

func notReady(n *api.Node) { n.Status.Conditions[0].Status = api.ConditionFalse }
func cordoned(n *api.Node) { n.Spec.Unschedulable = true }

func maxPods(pods, wasmPods string) nodeOpt {
	return func(n *api.Node) {
		n.Status.Allocatable[api.ResourcePods] = resource.MustParse(pods)
		n.Status.Allocatable[api.ResourceWasmPods] = resource.MustParse(wasmPods)
	}
}

type podOpt func(*api.Pod)

func mkPod(name, cpu, mem string, opts ...podOpt) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}}
	req := api.ResourceList{}
	if cpu != "" {
		req[api.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[api.ResourceMemory] = resource.MustParse(mem)
	}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "img", Resources: api.ResourceRequirements{Requests: req}}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func wasm(p *api.Pod) {
	rc := api.RuntimeWasm
	p.Spec.RuntimeClassName = &rc
}

func onNode(node string) podOpt { return func(p *api.Pod) { p.Spec.NodeName = node } }

func selector(kv ...string) podOpt {
	return func(p *api.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func toleration(t api.Toleration) podOpt {
	return func(p *api.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}

func phase(ph api.PodPhase) podOpt { return func(p *api.Pod) { p.Status.Phase = ph } }

func storeEvent(o api.Object) store.Event {
	o.GetObjectMeta().UID = "uid-" + o.GetObjectMeta().Name
	o.GetObjectMeta().ResourceVersion = "1"
	return store.Event{Type: store.Added, Object: o}
}
