package replicaset_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// createdBy records the pods a controller reports created (its
// SuccessfulCreate events, recorded after each successful create).
type createdBy struct {
	mu   sync.Mutex
	pods []string
}

func (r *createdBy) Eventf(_ api.ObjectReference, _, reason, _ string, args ...any) {
	if reason != framework.ReasonSuccessfulCreate || len(args) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pods = append(r.pods, fmt.Sprint(args[0]))
}

func (r *createdBy) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.pods...)
}

// Two controller managers racing (a forced lease overlap: the second breaks
// the first's lease and takes it while the first, whose renewal is seconds
// away, still believes it leads) over a ReplicaSet scaled from 30 to 60:
// 60 pods exist, never more; every create of the deposed manager landed
// before its successor's epoch; and the deposed manager steps down at its
// first refused write.
func TestReplicaSetControllersRacingCreateOnce(t *testing.T) {
	srv := testutil.StartNATS(t)
	ctx := t.Context()
	open := func() *store.Store {
		js, err := jetstream.New(testutil.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, js, store.Config{Fence: store.FenceBatch})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: api.DefaultNamespace}}
	api.Default(ns)
	if err := st.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	start := func(identity string, renew time.Duration, rec *createdBy) (*store.Lease, chan error) {
		s := open()
		l, err := s.Lease("controller-manager", identity, 10*time.Second, renew, log)
		if err != nil {
			t.Fatal(err)
		}
		fs := s.WithFence(l.Fence())
		mgr := framework.NewManager(fs, log)
		mgr.SetElector(l)
		mgr.Add("replicaset", replicaset.New(mgr, fs, replicaset.Config{Recorder: rec}, log))
		done := make(chan error, 1)
		rctx, cancel := context.WithCancel(ctx)
		go func() { done <- mgr.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return l, done
	}
	count := func() (int, map[string]uint64) {
		revs := map[string]uint64{}
		for _, p := range podsOf(t, ctx, st, "web") {
			rv, _ := strconv.ParseUint(p.ResourceVersion, 10, 64) // no one updates these pods
			revs[p.Name] = rv
		}
		return len(revs), revs
	}

	var recA, recB createdBy
	la, aDone := start("a", 8*time.Second, &recA)
	testutil.Eventually(t, 3*time.Second, func() error {
		if _, ok := la.Fence().Epoch(); !ok {
			return errors.New("a does not hold the lease yet")
		}
		return nil
	})
	rs := newRS("web", 30)
	if err := st.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n, _ := count(); n != 30 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

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
	// Both managers see the scale-up; only b's creates may land.
	cur, err := st.Get(ctx, api.KindOf(rs), "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	rs = cur.(*api.ReplicaSet)
	sixty := int32(60)
	rs.Spec.Replicas = &sixty
	if err := st.Update(ctx, rs); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-aDone:
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("deposed manager a ended with %v; want ErrLeaseLost", err)
		}
		aDone <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("deposed manager a did not step down")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n, _ := count(); n != 60 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond) // a late duplicate would show now
	n, revs := count()
	if n != 60 {
		t.Fatalf("%d pods; want 60", n)
	}
	byB := map[string]bool{}
	for _, name := range recB.names() {
		byB[name] = true
	}
	for _, name := range recA.names() {
		if rev, ok := revs[name]; !ok || rev > epochB {
			t.Errorf("deposed a's pod %s: stored at revision %d (present %v), after b's epoch %d", name, rev, ok, epochB)
		}
	}
	for name, rev := range revs {
		if rev > epochB && !byB[name] {
			t.Errorf("pod %s created at revision %d, after b's epoch %d, by a write b did not make", name, rev, epochB)
		}
	}
	t.Logf("a created %d pods, b %d", len(recA.names()), len(recB.names()))
}
