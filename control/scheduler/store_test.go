package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// openStore opens a store over its own connection to srv, as a separate
// process would.
func openStore(t testing.TB, srv *testutil.Server) *store.Store {
	t.Helper()
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	st, err := store.Open(t.Context(), js, store.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

// startScheduler runs a scheduler over st until the test ends.
func startScheduler(t testing.TB, cfg Config, st *store.Store) *Scheduler {
	t.Helper()
	s := New(cfg, st, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler Run: %v", err)
		}
	})
	return s
}

// createAll creates objects with a few writers in parallel.
func createAll(t testing.TB, st *store.Store, objs []api.Object) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const writers = 32
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(objs); i += writers {
				if err := st.Create(context.Background(), objs[i]); err != nil {
					select {
					case errs <- fmt.Errorf("create %s: %w", objs[i].GetObjectMeta().Name, err):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestTwoSchedulersBindEachPodOnce runs two schedulers over one real
// JetStream store, each with its own connection and watches, racing for the
// same pods: every pod must be bound exactly once, and never moved.
func TestTwoSchedulersBindEachPodOnce(t *testing.T) {
	srv := testutil.StartNATS(t)
	st := openStore(t, srv)
	const nodes, pods = 10, 400
	var objs []api.Object
	for i := range nodes {
		objs = append(objs, mkNode(fmt.Sprintf("node-%02d", i), "64", "256Gi", maxPods("1000", "1000")))
	}
	createAll(t, st, objs)

	// An observer sees every pod change: which nodes did each pod ever name?
	ctx := t.Context()
	watch, err := st.Watch(ctx, api.KindOf(&api.Pod{}), 0)
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]map[string]bool{}
	go func() {
		for ev := range watch {
			p, ok := ev.Object.(*api.Pod)
			if !ok || p.Spec.NodeName == "" {
				continue
			}
			mu.Lock()
			if seen[p.Name] == nil {
				seen[p.Name] = map[string]bool{}
			}
			seen[p.Name][p.Spec.NodeName] = true
			mu.Unlock()
		}
	}()

	// Half of the pods exist before the schedulers start, half arrive while
	// both run; one can never fit.
	mkPods := func(from, to int) []api.Object {
		var out []api.Object
		for i := from; i < to; i++ {
			opts := []podOpt{}
			if i%3 == 0 {
				opts = append(opts, wasm)
			}
			out = append(out, mkPod(fmt.Sprintf("pod-%04d", i), "100m", "128Mi", opts...))
		}
		return out
	}
	createAll(t, st, mkPods(0, pods/2))
	s1 := startScheduler(t, Config{}, openStore(t, srv))
	s2 := startScheduler(t, Config{}, openStore(t, srv))
	createAll(t, st, mkPods(pods/2, pods))
	createAll(t, st, []api.Object{mkPod("huge", "1000", "1Gi")})

	testutil.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != pods {
			return fmt.Errorf("%d of %d pods bound", len(seen), pods)
		}
		return nil
	})
	mu.Lock()
	for name, nodes := range seen {
		if len(nodes) != 1 {
			t.Errorf("pod %s was bound to %d nodes: %v", name, len(nodes), nodes)
		}
	}
	mu.Unlock()
	// The schedulers count a bind when its acknowledgement is processed,
	// which may come after the observer saw the write.
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := s1.Stats().Bound + s2.Stats().Bound; got < pods {
			return fmt.Errorf("%d binds acknowledged, want %d", got, pods)
		}
		return nil
	})
	st1, st2 := s1.Stats(), s2.Stats()
	t.Logf("scheduler 1: %+v", st1)
	t.Logf("scheduler 2: %+v", st2)
	if got := st1.Bound + st2.Bound; got != pods {
		t.Errorf("successful binds %d (%d + %d), want exactly %d", got, st1.Bound, st2.Bound, pods)
	}
	if seen["huge"] != nil {
		t.Errorf("huge pod bound to %v", seen["huge"])
	}
	want := "0/10 nodes are available: 10 Insufficient cpu."
	testutil.Eventually(t, 10*time.Second, func() error {
		o, err := st.Get(ctx, api.KindOf(&api.Pod{}), "default", "huge")
		if err != nil {
			return err
		}
		c := o.(*api.Pod).Status.Condition(api.PodScheduled)
		if c == nil || c.Status != api.ConditionFalse || c.Reason != api.ReasonUnschedulable || c.Message != want {
			return fmt.Errorf("huge: PodScheduled %+v, want False/Unschedulable %q", c, want)
		}
		return nil
	})

	// Every bound pod carries PodScheduled=True, read back from the store.
	list, _, err := st.List(ctx, api.KindOf(&api.Pod{}), store.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for _, o := range list {
		p := o.(*api.Pod)
		if p.Spec.NodeName == "" {
			continue
		}
		if c := p.Status.Condition(api.PodScheduled); c == nil || c.Status != api.ConditionTrue {
			t.Errorf("bound pod %s: PodScheduled %+v, want True", p.Name, c)
		}
	}
}

// TestStoreSchedulerFreesResources: over the real store, a pod that does not
// fit is bound once the pod holding the node is deleted.
func TestStoreSchedulerFreesResources(t *testing.T) {
	srv := testutil.StartNATS(t)
	st := openStore(t, srv)
	createAll(t, st, []api.Object{mkNode("a", "2", "4Gi"), mkPod("hog", "2", "1Gi", onNode("a"))})
	startScheduler(t, Config{}, st)
	createAll(t, st, []api.Object{mkPod("p", "1", "1Gi")})
	podKind := api.KindOf(&api.Pod{})
	testutil.Eventually(t, 10*time.Second, func() error {
		o, err := st.Get(t.Context(), podKind, "default", "p")
		if err != nil {
			return err
		}
		if c := o.(*api.Pod).Status.Condition(api.PodScheduled); c == nil || c.Message != "0/1 nodes are available: 1 Insufficient cpu." {
			return fmt.Errorf("p: PodScheduled %+v", c)
		}
		return nil
	})
	if _, err := st.Delete(t.Context(), podKind, "default", "hog", ""); err != nil {
		t.Fatalf("delete hog: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		o, err := st.Get(t.Context(), podKind, "default", "p")
		if err != nil {
			return err
		}
		if n := o.(*api.Pod).Spec.NodeName; n != "a" {
			return fmt.Errorf("p on %q, want a", n)
		}
		return nil
	})
}
