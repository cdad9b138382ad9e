package garbagecollector_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/deployment"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/garbagecollector"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	podKind    = api.KindOf(&api.Pod{})
	rsKind     = api.KindOf(&api.ReplicaSet{})
	deployKind = api.KindOf(&api.Deployment{})
)

func openStore(t *testing.T) (context.Context, *store.Store) { return frameworktest.OpenStore(t) }

// start runs the collector, and the workload controllers when workloads
// is set, until stop (or the test's end).
func start(t *testing.T, st *store.Store, workloads bool) (stop func()) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	return frameworktest.Run(t, st, log, func(mgr *framework.Manager) {
		if workloads {
			mgr.Add("replicaset", replicaset.New(mgr, st, replicaset.Config{}, log))
			mgr.Add("deployment", deployment.New(mgr, st, deployment.Config{}, log))
		}
		mgr.Add("garbagecollector", garbagecollector.New(mgr, st, garbagecollector.Config{}, log))
	})
}

func count(t *testing.T, ctx context.Context, st *store.Store, k *api.Kind) int {
	t.Helper()
	objs, _, err := st.List(ctx, k, store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

func pod(name string, owners ...api.Object) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "file:///m.wasm"}}}}
	for i, o := range owners {
		ref := api.NewControllerRef(o)
		if i > 0 {
			f := false
			ref.Controller = &f
		}
		p.OwnerReferences = append(p.OwnerReferences, ref)
	}
	api.Default(p)
	return p
}

func TestDeletingADeploymentCascades(t *testing.T) {
	ctx, st := openStore(t)
	start(t, st, true)
	two := int32(2)
	d := &api.Deployment{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"}, Spec: api.DeploymentSpec{
		Replicas: &two, Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "app:v1"}}}}}}
	api.Default(d)
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	// An unrelated pod stays.
	if err := st.Create(ctx, pod("lonely")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := count(t, ctx, st, podKind); n != 3 {
			return fmt.Errorf("%d pods, want 3", n)
		}
		return nil
	})
	if _, err := st.Delete(ctx, deployKind, "default", "web", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := count(t, ctx, st, rsKind); n != 0 {
			return fmt.Errorf("%d replicasets left", n)
		}
		if n := count(t, ctx, st, podKind); n != 1 {
			return fmt.Errorf("%d pods left, want only the unowned one", n)
		}
		return nil
	})
	if _, err := st.Get(ctx, podKind, "default", "lonely"); err != nil {
		t.Fatalf("the unowned pod was collected: %v", err)
	}
}

func TestCollectorCatchesUpAndChecksUID(t *testing.T) {
	ctx, st := openStore(t)
	owner := &api.ReplicaSet{ObjectMeta: api.ObjectMeta{Name: "rs", Namespace: "default"}, Spec: api.ReplicaSetSpec{
		Selector: &api.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
		Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"a": "b"}},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "x:1"}}}}}}
	zero := int32(0)
	owner.Spec.Replicas = &zero
	api.Default(owner)
	if err := st.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	keeper := api.DeepCopy(owner)
	keeper.Name, keeper.ResourceVersion, keeper.UID = "keeper", "", ""
	if err := st.Create(ctx, keeper); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*api.Pod{pod("owned", owner), pod("kept", keeper), pod("both", owner, keeper)} {
		if err := st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// The owner goes while no collector runs, and an object of its name
	// (another uid) takes its place.
	if _, err := st.Delete(ctx, rsKind, "default", "rs", ""); err != nil {
		t.Fatal(err)
	}
	again := api.DeepCopy(owner)
	again.ResourceVersion, again.UID = "", ""
	if err := st.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	start(t, st, false)
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := st.Get(ctx, podKind, "default", "owned"); !api.IsNotFound(err) {
			return fmt.Errorf("pod of the deleted owner: %v", err)
		}
		obj, err := st.Get(ctx, podKind, "default", "both")
		if err != nil {
			return err
		}
		if refs := obj.GetObjectMeta().OwnerReferences; len(refs) != 1 || refs[0].UID != keeper.UID {
			return fmt.Errorf("pod with a remaining owner has references %+v, want only the keeper", refs)
		}
		return nil
	})
	if _, err := st.Get(ctx, podKind, "default", "kept"); err != nil {
		t.Fatalf("a pod whose owner exists was collected: %v", err)
	}
}

// markDeleted marks an object as the apiserver does for a Foreground or
// Orphan delete.
func markDeleted(t *testing.T, ctx context.Context, st *store.Store, k *api.Kind, name, finalizer string) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, k, "default", name)
		if err != nil {
			return err
		}
		m := obj.GetObjectMeta()
		now := time.Now().UTC()
		m.DeletionTimestamp = &now
		m.Finalizers = append(m.Finalizers, finalizer)
		return st.Update(ctx, obj)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newDeployment(name string) *api.Deployment {
	two := int32(2)
	d := &api.Deployment{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.DeploymentSpec{
		Replicas: &two, Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
		Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "app:v1"}}}}}}
	api.Default(d)
	return d
}

// Foreground: the owner is removed only after its dependents (and theirs).
func TestForegroundDeletesDependentsFirst(t *testing.T) {
	ctx, st := openStore(t)
	start(t, st, true)
	if err := st.Create(ctx, newDeployment("web")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := count(t, ctx, st, podKind); n != 2 {
			return fmt.Errorf("%d pods, want 2", n)
		}
		return nil
	})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := st.Watch(wctx, deployKind, 0)
	if err != nil {
		t.Fatal(err)
	}
	markDeleted(t, ctx, st, deployKind, "web", api.FinalizerDeleteDependents)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Type != store.Deleted {
				continue
			}
			if n, p := count(t, ctx, st, rsKind), count(t, ctx, st, podKind); n != 0 || p != 0 {
				t.Fatalf("deployment removed while %d replicasets and %d pods remain", n, p)
			}
			return
		case <-deadline:
			t.Fatal("foreground-deleted deployment never removed")
		}
	}
}

// Orphan: the dependents stay, unowned; the owner goes.
func TestOrphanKeepsDependents(t *testing.T) {
	ctx, st := openStore(t)
	start(t, st, true)
	if err := st.Create(ctx, newDeployment("web")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := count(t, ctx, st, podKind); n != 2 {
			return fmt.Errorf("%d pods, want 2", n)
		}
		return nil
	})
	markDeleted(t, ctx, st, deployKind, "web", api.FinalizerOrphanDependents)
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := st.Get(ctx, deployKind, "default", "web"); !api.IsNotFound(err) {
			return fmt.Errorf("deployment still there: %v", err)
		}
		objs, _, err := st.List(ctx, rsKind, store.ListOptions{Namespace: "default"})
		if err != nil {
			return err
		}
		if len(objs) != 1 || len(objs[0].GetObjectMeta().OwnerReferences) != 0 {
			return fmt.Errorf("replicasets %d, want 1 without owner", len(objs))
		}
		return nil
	})
	if n := count(t, ctx, st, podKind); n != 2 {
		t.Fatalf("%d pods after an orphan delete, want 2", n)
	}
}
