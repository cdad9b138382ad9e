package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// scheduledBy records the pods a scheduler reports bound (its Scheduled
// events, recorded after each successful binding write).
type scheduledBy struct {
	mu   sync.Mutex
	pods map[string]bool
}

func (r *scheduledBy) Eventf(ref api.ObjectReference, _, reason, _ string, _ ...any) {
	if reason != api.ReasonScheduled {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pods == nil {
		r.pods = map[string]bool{}
	}
	r.pods[ref.Name] = true
}

func (r *scheduledBy) names() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.pods))
	for k := range r.pods {
		out[k] = true
	}
	return out
}

// Two schedulers racing (a forced lease overlap: the second breaks the
// first's lease and acquires it while the first, whose renewal is seconds
// away, still believes it leads), 200 pods: every pod is bound exactly
// once, every binding write of the deposed scheduler landed before its
// successor's epoch (none after: they fail with ErrLeaseLost), and the
// deposed scheduler steps down at its first refused write, long before its
// next renewal would have told it.
func TestSchedulersRacingBindEveryPodOnce(t *testing.T) {
	srv := testutil.StartNATS(t)
	st := openStore(t, srv)
	ctx := t.Context()
	createAll(t, st, []api.Object{mkNode("node-a", "64", "64Gi"), mkNode("node-b", "64", "64Gi")})

	// Every change of nodeName, per pod, with its revision.
	type bind struct {
		node string
		rev  uint64
	}
	var mu sync.Mutex
	binds := map[string][]bind{}
	events, err := st.Watch(ctx, api.KindOf(&api.Pod{}), 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		last := map[string]string{}
		for ev := range events {
			if ev.Object == nil {
				continue
			}
			p := ev.Object.(*api.Pod)
			if p.Spec.NodeName != last[p.Name] {
				last[p.Name] = p.Spec.NodeName
				mu.Lock()
				binds[p.Name] = append(binds[p.Name], bind{p.Spec.NodeName, ev.Revision})
				mu.Unlock()
			}
		}
	}()

	start := func(identity string, renew time.Duration, rec *scheduledBy) (*store.Lease, chan error) {
		js, err := jetstream.New(testutil.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(ctx, js, store.Config{Logger: testLogger(t), Fence: store.FenceBatch})
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Lease("scheduler", identity, 10*time.Second, renew, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		sched := New(Config{Recorder: rec}, s.WithFence(l.Fence()), testLogger(t))
		done := make(chan error, 1)
		rctx, cancel := context.WithCancel(ctx)
		go func() { done <- sched.RunWithLease(rctx, l) }()
		t.Cleanup(func() { cancel(); <-done })
		return l, done
	}
	var recA, recB scheduledBy
	// a renews only every 8 s: without fencing it would go on binding
	// for seconds after b took over.
	la, aDone := start("a", 8*time.Second, &recA)
	testutil.Eventually(t, 3*time.Second, func() error {
		if _, ok := la.Fence().Epoch(); !ok {
			return errors.New("a does not hold the lease yet")
		}
		return nil
	})
	mkPods := func(from, to int) {
		var pods []api.Object
		for i := from; i < to; i++ {
			pods = append(pods, mkPod("p-"+strconv.Itoa(i), "10m", "1Mi"))
		}
		createAll(t, st, pods)
	}
	mkPods(0, 100)
	testutil.Eventually(t, 3*time.Second, func() error {
		if n := len(recA.names()); n < 20 {
			return fmt.Errorf("a bound %d pods", n)
		}
		return nil
	})

	// The overlap: b breaks a's lease and takes it; a still believes it leads.
	lb, _ := start("b", 200*time.Millisecond, &recB)
	if err := lb.Break(ctx); err != nil {
		t.Fatal(err)
	}
	var epochB uint64
	testutil.Eventually(t, 3*time.Second, func() error {
		var ok bool
		if epochB, ok = lb.Fence().Epoch(); !ok {
			return errors.New("b does not hold the lease yet")
		}
		return nil
	})
	tookOver := time.Now()
	mkPods(100, 200)

	select {
	case err := <-aDone:
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("deposed scheduler a ended with %v; want ErrLeaseLost", err)
		}
		aDone <- nil
		t.Logf("a stepped down %v after b's claim (its next renewal was up to 8s away)", time.Since(tookOver))
	case <-time.After(5 * time.Second):
		t.Fatal("deposed scheduler a did not step down")
	}

	testutil.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(binds) != 200 {
			return fmt.Errorf("%d of 200 pods bound", len(binds))
		}
		return nil
	})
	byA, byB := recA.names(), recB.names()
	mu.Lock()
	defer mu.Unlock()
	for name, bs := range binds {
		if len(bs) != 1 {
			t.Errorf("pod %s: nodeName changed %d times: %v", name, len(bs), bs)
		}
		switch {
		case byA[name] && byB[name]:
			t.Errorf("pod %s: both schedulers' binding writes succeeded", name)
		case bs[0].rev > epochB && !byB[name]:
			t.Errorf("pod %s: bound at revision %d, after b's epoch %d, by a write b did not make", name, bs[0].rev, epochB)
		case byA[name] && bs[0].rev > epochB:
			t.Errorf("pod %s: deposed a's binding landed at revision %d, after b's epoch %d", name, bs[0].rev, epochB)
		case byB[name] && bs[0].rev < epochB:
			t.Errorf("pod %s: b bound it at %d, before its epoch %d", name, bs[0].rev, epochB)
		case !byA[name] && !byB[name]:
			// a's write landed before the takeover but a, stepping down,
			// never saw its reply (its context ended first).
			t.Logf("pod %s: bound at %d (before b's epoch %d) by a, which did not see the reply", name, bs[0].rev, epochB)
		}
	}
	t.Logf("a bound %d pods before the takeover, b %d after", len(byA), len(byB))
}
