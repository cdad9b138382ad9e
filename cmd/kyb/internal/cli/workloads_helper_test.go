package cli

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// runControllers runs the controllers add puts on a manager against the
// last startCluster's store, after creating the Ready nodes named, and
// plays the node agents: every new pod that is not being deleted becomes
// Running and Ready.
func runControllers(t *testing.T, add func(mgr *framework.Manager, st *store.Store, log *slog.Logger), nodes ...string) {
	t.Helper()
	nc, err := nats.Connect(controlURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, js, store.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range nodes {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}}
		n.Status.SetCondition(api.NodeCondition{Type: api.NodeReady, Status: api.ConditionTrue})
		if err := st.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	frameworktest.Run(t, st, log, func(mgr *framework.Manager) { add(mgr, st, log) })
	podKind := api.KindOf(&api.Pod{})
	ch, err := st.Watch(ctx, podKind, 0)
	if err != nil {
		t.Fatal(err)
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range ch {
			p, ok := ev.Object.(*api.Pod)
			if !ok || ev.Type == store.Deleted || replicaset.IsPodReady(p) || p.DeletionTimestamp != nil {
				continue
			}
			_ = retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
				obj, err := st.Get(ctx, podKind, p.Namespace, p.Name)
				if err != nil {
					return err
				}
				cur := obj.(*api.Pod)
				cur.Status.Phase = api.PodRunning
				cur.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue})
				return st.Update(ctx, cur)
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-watched })
}
