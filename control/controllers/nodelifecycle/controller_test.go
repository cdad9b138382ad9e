package nodelifecycle_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/nodelifecycle"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var nodeKind = api.KindOf(&api.Node{})

func TestNodeLifecycle(t *testing.T) {
	s := testutil.StartNATS(t)
	nc := testutil.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := store.OpenHeartbeats(ctx, js, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ready := func(name string) *api.Node {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}}
		api.Default(n)
		n.Status.Conditions = []api.NodeCondition{
			{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "AgentReady"},
			{Type: api.NodeMemoryPressure, Status: api.ConditionFalse},
		}
		return n
	}
	for _, name := range []string{"silent", "never", "alive"} {
		if err := st.Create(ctx, ready(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := hb.Beat(ctx, "silent", time.Now()); err != nil {
		t.Fatal(err)
	}
	// "alive" keeps beating for the whole test.
	var wg sync.WaitGroup
	beatCtx, stopBeats := context.WithCancel(ctx)
	wg.Go(func() {
		for beatCtx.Err() == nil {
			_ = hb.Beat(beatCtx, "alive", time.Now())
			select {
			case <-beatCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	defer wg.Wait()
	defer stopBeats()
	if err := hb.Beat(ctx, "alive", time.Now()); err != nil {
		t.Fatal(err)
	}

	mgr := framework.NewManager(st, slog.New(slog.DiscardHandler))
	c := nodelifecycle.New(mgr, st, hb, nodelifecycle.Config{Grace: 2 * time.Second}, slog.New(slog.DiscardHandler))
	mgr.Add("nodelifecycle", c)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()

	condition := func(name, typ string) (*api.NodeCondition, error) {
		obj, err := st.Get(ctx, nodeKind, "", name)
		if err != nil {
			return nil, err
		}
		cond := obj.(*api.Node).Status.Condition(typ)
		if cond == nil {
			return nil, fmt.Errorf("node %s has no %s condition", name, typ)
		}
		return cond, nil
	}
	waitStatus := func(name string, want api.ConditionStatus) {
		t.Helper()
		testutil.Eventually(t, 15*time.Second, func() error {
			cond, err := condition(name, api.NodeReady)
			if err != nil {
				return err
			}
			if cond.Status != want {
				return fmt.Errorf("node %s Ready=%s, want %s", name, cond.Status, want)
			}
			return nil
		})
	}

	t.Run("expired heartbeat", func(t *testing.T) {
		waitStatus("silent", api.ConditionUnknown)
		cond, _ := condition("silent", api.NodeReady)
		if cond.Reason != nodelifecycle.ReasonNodeStatusUnknown || cond.Message != nodelifecycle.MessageStoppedPosting || cond.LastTransitionTime.IsZero() {
			t.Fatalf("Ready condition %+v", cond)
		}
		mp, err := condition("silent", api.NodeMemoryPressure)
		if err != nil || mp.Status != api.ConditionUnknown {
			t.Fatalf("MemoryPressure %+v %v", mp, err)
		}
	})
	t.Run("never beat", func(t *testing.T) {
		waitStatus("never", api.ConditionUnknown)
	})
	t.Run("beating node stays ready", func(t *testing.T) {
		if cond, err := condition("alive", api.NodeReady); err != nil || cond.Status != api.ConditionTrue {
			t.Fatalf("alive: %+v %v", cond, err)
		}
	})
	t.Run("recovers and fails again", func(t *testing.T) {
		// The agent comes back: it beats and reports Ready itself.
		if err := hb.Beat(ctx, "silent", time.Now()); err != nil {
			t.Fatal(err)
		}
		obj, err := st.Get(ctx, nodeKind, "", "silent")
		if err != nil {
			t.Fatal(err)
		}
		n := obj.(*api.Node)
		n.Status.SetCondition(api.NodeCondition{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "AgentReady"})
		if err := st.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		waitStatus("silent", api.ConditionTrue)
		// ...and goes silent again.
		waitStatus("silent", api.ConditionUnknown)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}
