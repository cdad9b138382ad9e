package frameworktest

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// OpenStore opens a store on a new embedded JetStream (shut down at the
// test's end) holding the namespace "default", and returns a context that
// ends with the test.
func OpenStore(t testing.TB) (context.Context, *store.Store) {
	t.Helper()
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: api.DefaultNamespace}}
	api.Default(ns)
	if err := st.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ctx, st
}

// Run runs a manager over st, with the runnables add puts on it, until the
// returned stop is called or the test ends (stop may be called twice).
func Run(t testing.TB, st *store.Store, log *slog.Logger, add func(mgr *framework.Manager)) (stop func()) {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr := framework.NewManager(st, log)
	add(mgr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}
