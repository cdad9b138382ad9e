package namespace_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/namespace"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	nsKind   = api.KindOf(&api.Namespace{})
	podKind  = api.KindOf(&api.Pod{})
	roleKind = api.KindOf(&api.Role{})
	quiet    = slog.New(slog.DiscardHandler)
)

func pod(ns, name, node string) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: ns}}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	p.Spec.NodeName = node
	api.Default(p)
	return p
}

func TestFinalizeNamespace(t *testing.T) {
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, js, store.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate := func(objs ...api.Object) {
		t.Helper()
		for _, o := range objs {
			if err := st.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	node := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}
	api.Default(node)
	boundGrace5 := pod("gone", "bound", "n1")
	five := int64(5)
	boundGrace5.Spec.TerminationGracePeriodSeconds = &five
	mustCreate(node,
		&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "live"}},
		&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "gone"}},
		&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "lost"}},
		pod("live", "p", ""), pod("live", "bound", "n1"),
		pod("gone", "unbound", ""), boundGrace5,
		pod("lost", "orphan", "n-deleted"),
		&api.Role{ObjectMeta: api.ObjectMeta{Name: "r", Namespace: "gone"}},
	)
	mgr := framework.NewManager(st, quiet)
	c := namespace.New(mgr, st, namespace.Config{DefaultGracePeriod: 7 * time.Second}, quiet)
	mgr.Add("namespace", c)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()

	terminate := func(name string) {
		t.Helper()
		obj, err := st.Get(ctx, nsKind, "", name)
		if err != nil {
			t.Fatal(err)
		}
		ns := obj.(*api.Namespace)
		now := time.Now().UTC()
		ns.DeletionTimestamp, ns.Status.Phase = &now, api.NamespaceTerminating
		if err := st.Update(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(k *api.Kind, ns, name string) error {
		if _, err := st.Get(ctx, k, ns, name); !api.IsNotFound(err) {
			return fmt.Errorf("%s %s/%s: %v, want NotFound", k.Name, ns, name, err)
		}
		return nil
	}

	t.Run("content deleted, bound pod waits for its agent", func(t *testing.T) {
		terminate("gone")
		testutil.Eventually(t, 10*time.Second, func() error {
			if err := errors.Join(gone(podKind, "gone", "unbound"), gone(roleKind, "gone", "r")); err != nil {
				return err
			}
			obj, err := st.Get(ctx, podKind, "gone", "bound")
			if err != nil {
				return err
			}
			p := obj.(*api.Pod)
			if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 5 {
				return fmt.Errorf("bound pod not marked for graceful deletion: %+v", p.ObjectMeta)
			}
			return nil
		})
		if _, err := st.Get(ctx, nsKind, "", "gone"); err != nil {
			t.Fatalf("namespace removed while its bound pod is still stopping: %v", err)
		}
		// The agent reports the pod finalized: the apiserver deletes it.
		if _, err := st.Delete(ctx, podKind, "gone", "bound", ""); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() error { return gone(nsKind, "", "gone") })
	})

	t.Run("pod of a deleted node is removed at once", func(t *testing.T) {
		terminate("lost")
		testutil.Eventually(t, 10*time.Second, func() error {
			return errors.Join(gone(podKind, "lost", "orphan"), gone(nsKind, "", "lost"))
		})
	})

	t.Run("an active namespace is left alone", func(t *testing.T) {
		for _, name := range []string{"p", "bound"} {
			obj, err := st.Get(ctx, podKind, "live", name)
			if err != nil {
				t.Fatalf("pod live/%s: %v", name, err)
			}
			if obj.(*api.Pod).DeletionTimestamp != nil {
				t.Fatalf("pod live/%s marked for deletion", name)
			}
		}
		if _, err := st.Get(ctx, nsKind, "", "live"); err != nil {
			t.Fatal(err)
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
