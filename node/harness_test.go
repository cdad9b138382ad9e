package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// fakeCP is a minimal control plane: responders for the node verbs on a
// real NATS server that record what they get, a pod "store", and
// assignment pushes.
type fakeCP struct {
	t    testing.TB
	nc   *nats.Conn
	node string

	mu         sync.Mutex
	rev        uint64
	pods       map[string]*api.Pod // by UID
	registers  []api.Node
	statuses   []api.NodeStatus
	heartbeats int
	syncs      int
	updates    map[string][]api.PodStatusUpdate // by UID, in arrival order
	batches    int
	paused     bool
	subs       []*nats.Subscription
	autoDelete bool        // remove finalized pods and push DELETED, as the apiserver does
	forgotten  bool        // the Node was deleted: heartbeats get NotFound until a register
	events     []api.Event // recorded through kyb.node.<node>.events, in arrival order
	// svcObjs are the Services and EndpointSlices the services watch
	// streams (by kind/namespace/name); svcWatches its open streams' inboxes.
	svcObjs    map[string]api.Object
	svcWatches []string
}

func newFakeCP(t testing.TB, srv *testutil.Server, node string) *fakeCP {
	nc := testutil.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	cp := &fakeCP{t: t, nc: nc, node: node, pods: map[string]*api.Pod{},
		updates: map[string][]api.PodStatusUpdate{}, autoDelete: true, svcObjs: map[string]api.Object{}}
	cp.serve()
	cp.serveServices()
	return cp
}

// serveServices answers the services watch: the objects, SYNCED, then
// every putService (no heartbeats: tests are shorter than a stream's idle
// limit).
func (cp *fakeCP) serveServices() {
	sub, err := cp.nc.Subscribe(api.NodeSubject(cp.node, api.NodeVerbServiceWatch), func(m *nats.Msg) {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.svcWatches = append(cp.svcWatches, m.Reply)
		for _, o := range cp.svcObjs {
			cp.sendService(m.Reply, api.EventAdded, o)
		}
		cp.sendService(m.Reply, api.EventSynced, nil)
	})
	if err != nil {
		cp.t.Fatalf("fake control plane: subscribe: %v", err)
	}
	cp.subs = append(cp.subs, sub)
}

// sendService sends one watch event; cp.mu is held.
func (cp *fakeCP) sendService(reply, typ string, o api.Object) {
	raw, _ := json.Marshal(o)
	b, _ := json.Marshal(api.WatchEvent{Type: typ, Object: raw})
	msg := nats.NewMsg(reply)
	msg.Header.Set(api.StreamHeader, api.StreamData)
	msg.Data = b
	_ = cp.nc.PublishMsg(msg)
}

// putService stores (or with DELETED removes) a Service or EndpointSlice
// and streams the change to the open watches.
func (cp *fakeCP) putService(typ string, o api.Object) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	m := o.GetObjectMeta()
	key := api.KindOf(o).Name + "/" + m.Namespace + "/" + m.Name
	if typ == api.EventDeleted {
		delete(cp.svcObjs, key)
	} else {
		cp.svcObjs[key] = o
	}
	for _, r := range cp.svcWatches {
		cp.sendService(r, typ, o)
	}
}

func (cp *fakeCP) serve() {
	handle := func(verb string, f func(m *nats.Msg) any) {
		sub, err := cp.nc.Subscribe(api.NodeSubject(cp.node, verb), func(m *nats.Msg) {
			cp.mu.Lock()
			paused := cp.paused
			cp.mu.Unlock()
			if paused {
				return
			}
			out := f(m)
			b, _ := json.Marshal(out)
			if st, ok := out.(*api.Status); ok { // as the micro service answers errors
				r := nats.NewMsg(m.Reply)
				r.Header.Set("Nats-Service-Error-Code", strconv.Itoa(st.Code))
				r.Header.Set("Nats-Service-Error", st.Message)
				r.Data = b
				_ = m.RespondMsg(r)
				return
			}
			_ = m.Respond(b)
		})
		if err != nil {
			cp.t.Fatalf("fake control plane: subscribe: %v", err)
		}
		cp.subs = append(cp.subs, sub)
	}
	handle(api.NodeVerbRegister, func(m *nats.Msg) any {
		var n api.Node
		if err := json.Unmarshal(m.Data, &n); err != nil {
			return api.NewBadRequest("%v", err)
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.registers = append(cp.registers, n)
		cp.forgotten = false
		n.Spec.PodCIDR = "10.244.0.0/24"
		return n
	})
	handle(api.NodeVerbHeartbeat, func(m *nats.Msg) any {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		if cp.forgotten {
			return api.NewNotFound("Node", cp.node)
		}
		cp.heartbeats++
		return api.Ack{OK: true}
	})
	handle(api.NodeVerbStatus, func(m *nats.Msg) any {
		var st api.NodeStatus
		if err := json.Unmarshal(m.Data, &st); err != nil {
			return api.NewBadRequest("%v", err)
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.statuses = append(cp.statuses, st)
		return api.Ack{OK: true}
	})
	handle(api.NodeVerbSync, func(m *nats.Msg) any {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.syncs++
		ps := api.PodSync{Revision: cp.rev, Pods: []api.Pod{}}
		for _, p := range cp.pods {
			ps.Pods = append(ps.Pods, *p)
		}
		return ps
	})
	handle(api.NodeVerbEvents, func(m *nats.Msg) any {
		var ev api.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return api.NewBadRequest("%v", err)
		}
		if err := api.ValidateEvent(&ev); err != nil {
			return err
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.events = append(cp.events, ev)
		return ev
	})
	handle(api.NodeVerbPodStatus, func(m *nats.Msg) any {
		var b api.PodStatusBatch
		if err := json.Unmarshal(m.Data, &b); err != nil {
			return api.NewBadRequest("%v", err)
		}
		var deleted []api.Pod
		cp.mu.Lock()
		cp.batches++
		for _, u := range b.Items {
			cp.updates[u.UID] = append(cp.updates[u.UID], u)
			p := cp.pods[u.UID]
			if p == nil {
				continue
			}
			cp.rev++
			p.Status = u.Status
			p.ResourceVersion = strconv.FormatUint(cp.rev, 10)
			if u.Finalized && cp.autoDelete {
				delete(cp.pods, u.UID)
				deleted = append(deleted, *p)
			}
		}
		cp.mu.Unlock()
		for i := range deleted {
			cp.push(api.EventDeleted, &deleted[i])
		}
		return api.Ack{OK: true}
	})
}

// pause makes the control plane stop answering (requests time out).
func (cp *fakeCP) pause(p bool) {
	cp.mu.Lock()
	cp.paused = p
	cp.mu.Unlock()
}

func (cp *fakeCP) push(typ string, p *api.Pod) {
	b, _ := json.Marshal(api.Assignment{Type: typ, Pod: *p})
	if err := cp.nc.Publish(api.AgentSubject(cp.node, api.AgentVerbPods), b); err != nil {
		cp.t.Errorf("push assignment: %v", err)
	}
	_ = cp.nc.Flush()
}

var uidSeq atomic.Int64

// newUID returns a fresh pod uid in the form the apiserver gives (a UUID).
func newUID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", uidSeq.Add(1))
}

// store puts p into the store (assigning uid, revision) without pushing.
func (cp *fakeCP) store(p *api.Pod) *api.Pod {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.rev++
	if p.UID == "" {
		p.UID = newUID()
	}
	if p.Namespace == "" {
		p.Namespace = api.DefaultNamespace
	}
	p.Spec.NodeName = cp.node
	p.ResourceVersion = strconv.FormatUint(cp.rev, 10)
	c := *p
	cp.pods[p.UID] = &c
	return &c
}

// assign stores p and pushes it to the agent.
func (cp *fakeCP) assign(p *api.Pod) *api.Pod {
	c := cp.store(p)
	cp.push(api.EventAdded, c)
	return c
}

// markDeleted sets deletionTimestamp (and the grace) and pushes the change.
func (cp *fakeCP) markDeleted(uid string, grace *int64) {
	cp.mu.Lock()
	p := cp.pods[uid]
	if p == nil {
		cp.mu.Unlock()
		cp.t.Fatalf("markDeleted: no pod %s", uid)
	}
	cp.rev++
	now := time.Now().UTC()
	p.DeletionTimestamp = &now
	p.DeletionGracePeriodSeconds = grace
	p.ResourceVersion = strconv.FormatUint(cp.rev, 10)
	c := *p
	cp.mu.Unlock()
	cp.push(api.EventModified, &c)
}

// remove deletes a pod from the store; with push, the agent is told.
func (cp *fakeCP) remove(uid string, push bool) {
	cp.mu.Lock()
	p := cp.pods[uid]
	delete(cp.pods, uid)
	cp.rev++
	cp.mu.Unlock()
	if push && p != nil {
		cp.push(api.EventDeleted, p)
	}
}

// last returns the latest status update of a pod, or nil.
func (cp *fakeCP) last(uid string) *api.PodStatusUpdate {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	us := cp.updates[uid]
	if len(us) == 0 {
		return nil
	}
	u := us[len(us)-1]
	return &u
}

func (cp *fakeCP) history(uid string) []api.PodStatusUpdate {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.updates[uid])
}

func (cp *fakeCP) counts() (registers, syncs, heartbeats, statuses int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return len(cp.registers), cp.syncs, cp.heartbeats, len(cp.statuses)
}

// waitPhase waits for the pod's latest reported phase.
func (cp *fakeCP) waitPhase(t testing.TB, uid string, phase api.PodPhase) *api.PodStatusUpdate {
	t.Helper()
	var u *api.PodStatusUpdate
	testutil.Eventually(t, 10*time.Second, func() error {
		u = cp.last(uid)
		if u == nil {
			return fmt.Errorf("no status for %s", uid)
		}
		if u.Status.Phase != phase {
			return fmt.Errorf("phase %s (%s), want %s; containers %s", u.Status.Phase, u.Status.Reason, phase, describe(u.Status.ContainerStatuses))
		}
		return nil
	})
	return u
}

func describe(cs []api.ContainerStatus) string {
	b, _ := json.Marshal(cs)
	return string(b)
}

// harness is one NATS server, a fake control plane, a fake runtime and an
// agent that can be started and stopped.
type harness struct {
	t      testing.TB
	srv    *testutil.Server
	cp     *fakeCP
	rts    map[string]runtimes.Runtime
	fake   *fake.Runtime
	cfg    Config
	nc     *nats.Conn
	agent  *Agent
	cancel context.CancelFunc
	done   chan error
	logsJS jetstream.JetStream
}

func testConfig(t testing.TB) Config {
	return Config{
		Name:                "node-1",
		DataDir:             t.TempDir(),
		HeartbeatInterval:   50 * time.Millisecond,
		StatusInterval:      200 * time.Millisecond,
		StatusFlushInterval: 10 * time.Millisecond,
		RequestTimeout:      time.Second,
		BackoffBase:         20 * time.Millisecond,
		BackoffMax:          160 * time.Millisecond,
		BackoffReset:        time.Minute,
		LogPollInterval:     20 * time.Millisecond,
	}
}

func newHarness(t testing.TB) *harness {
	srv := testutil.StartNATS(t)
	h := &harness{t: t, srv: srv, cfg: testConfig(t)}
	h.cp = newFakeCP(t, srv, h.cfg.Name)
	rt, err := fake.New(fake.Config{Name: api.RuntimeContainerd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.fake = rt
	h.rts = map[string]runtimes.Runtime{api.RuntimeContainerd: rt}
	js, err := jetstream.New(h.cp.nc)
	if err != nil {
		t.Fatal(err)
	}
	h.logsJS = js
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: api.LogsStream, Subjects: []string{api.LogsPrefix + ".>"}, Duplicates: time.Minute,
	}); err != nil {
		t.Fatalf("create logs stream: %v", err)
	}
	return h
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("KYB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a new agent on a new connection and waits until it is ready.
func (h *harness) start() *Agent {
	h.t.Helper()
	h.nc = testutil.Connect(h.t, h.srv, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	a, err := New(h.cfg, h.nc, h.rts, testLogger(h.t))
	if err != nil {
		h.t.Fatalf("new agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.agent, h.cancel, h.done = a, cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
	select {
	case <-a.Ready():
	case err := <-h.done:
		h.t.Fatalf("agent ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatalf("agent not ready after 10s")
	}
	return a
}

// stop ends the agent (pods keep running) and waits for Run to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("agent Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("agent did not stop within 10s")
	}
	h.nc.Close()
}

// logLines returns the log lines stored for a container.
func (h *harness) logLines(ns, pod, ctr string) []string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.logsJS.Stream(ctx, api.LogsStream)
	if err != nil {
		h.t.Fatalf("logs stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatalf("logs stream info: %v", err)
	}
	var out []string
	// Any node's: kyb.logs.<node>.<ns>.<pod>.<ctr>.
	suffix := strings.TrimPrefix(api.LogSubject("", ns, pod, ctr), api.LogsPrefix+".")
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m.Subject, api.LogsPrefix+".") && strings.HasSuffix(m.Subject, suffix) {
			out = append(out, string(m.Data))
		}
	}
	return out
}

func mkpod(name string, policy api.RestartPolicy, images ...string) *api.Pod {
	p := &api.Pod{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
	p.Name = name
	p.Spec.RestartPolicy = policy
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, api.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

// podDir is the agent's directory of pod uid.
func (h *harness) podDir(uid string) string {
	h.t.Helper()
	dir, err := h.agent.podPath(uid)
	if err != nil {
		h.t.Fatalf("pod dir: %v", err)
	}
	return dir
}

func ptr[T any](v T) *T { return &v }
