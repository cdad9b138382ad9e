package statefulset_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/statefulset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	podKind = api.KindOf(&api.Pod{})
	pvcKind = api.KindOf(&api.PersistentVolumeClaim{})
	setKind = api.KindOf(&api.StatefulSet{})
)

func start(t *testing.T) (context.Context, *store.Store) {
	t.Helper()
	ctx, st := frameworktest.OpenStore(t)
	frameworktest.Run(t, st, nil, func(mgr *framework.Manager) {
		mgr.Add("statefulset", statefulset.New(mgr, st, statefulset.Config{}, slog.New(slog.DiscardHandler)))
	})
	return ctx, st
}

func newSet(name string, replicas int32, edit func(*api.StatefulSet)) *api.StatefulSet {
	s := &api.StatefulSet{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.StatefulSetSpec{
		Replicas:    &replicas,
		ServiceName: name,
		Selector:    &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
		Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "db", Image: "postgres:16"}}}},
		VolumeClaimTemplates: []api.PersistentVolumeClaim{{ObjectMeta: api.ObjectMeta{Name: "data"}, Spec: api.PersistentVolumeClaimSpec{
			AccessModes: []string{api.ReadWriteOnce},
			Resources:   api.VolumeResourceRequirements{Requests: api.ResourceList{api.ResourceStorage: resource.MustParse("1Gi")}},
		}}},
	}}
	if edit != nil {
		edit(s)
	}
	api.Default(s)
	return s
}

// pods returns the live (not being deleted) pods of the store, by name.
func pods(t *testing.T, ctx context.Context, st *store.Store) map[string]*api.Pod {
	t.Helper()
	objs, _, err := st.List(ctx, podKind, store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*api.Pod{}
	for _, o := range objs {
		if p := o.(*api.Pod); p.DeletionTimestamp == nil {
			out[p.Name] = p
		}
	}
	return out
}

func names(m map[string]*api.Pod) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func waitPods(t *testing.T, ctx context.Context, st *store.Store, want ...string) map[string]*api.Pod {
	t.Helper()
	var got map[string]*api.Pod
	testutil.Eventually(t, 5*time.Second, func() error {
		got = pods(t, ctx, st)
		if n := names(got); !slices.Equal(n, want) {
			return fmt.Errorf("pods %v, want %v", n, want)
		}
		return nil
	})
	return got
}

// setReady makes the pod Running and Ready, as its agent would report.
func setReady(t *testing.T, ctx context.Context, st *store.Store, name string) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := st.Get(ctx, podKind, "default", name)
		if err != nil {
			return err
		}
		p := o.(*api.Pod)
		p.Status.Phase = api.PodRunning
		p.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: time.Now()})
		return st.Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kubelet makes every new pod Running and Ready (as agents would) until
// the test ends, and records the order pods are deleted in.
type kubelet struct {
	mu      sync.Mutex
	deleted []string
}

func runKubelet(t *testing.T, ctx context.Context, st *store.Store) *kubelet {
	k := &kubelet{}
	ch, err := st.Watch(ctx, podKind, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range ch {
			p, ok := ev.Object.(*api.Pod)
			if !ok {
				continue
			}
			if ev.Type == store.Deleted {
				k.mu.Lock()
				k.deleted = append(k.deleted, p.Name)
				k.mu.Unlock()
				continue
			}
			if p.DeletionTimestamp == nil && p.Status.Phase != api.PodRunning {
				_ = retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
					o, err := st.Get(ctx, podKind, "default", p.Name)
					if err != nil {
						return err
					}
					cur := o.(*api.Pod)
					if cur.UID != p.UID || cur.Status.Phase == api.PodRunning {
						return nil
					}
					cur.Status.Phase = api.PodRunning
					cur.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: time.Now()})
					return st.Update(ctx, cur)
				})
			}
		}
	}()
	return k
}

func (k *kubelet) order() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.deleted)
}

func claimExists(t *testing.T, ctx context.Context, st *store.Store, name string) bool {
	t.Helper()
	_, err := st.Get(ctx, pvcKind, "default", name)
	if err != nil && !api.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestOrderedStartStableNamesAndClaims(t *testing.T) {
	ctx, st := start(t)
	if err := st.Create(ctx, newSet("web", 3, nil)); err != nil {
		t.Fatal(err)
	}
	// Only web-0 until it is Running and Ready.
	got := waitPods(t, ctx, st, "web-0")
	time.Sleep(50 * time.Millisecond)
	if n := names(pods(t, ctx, st)); len(n) != 1 {
		t.Fatalf("pods %v before web-0 was ready", n)
	}
	p := got["web-0"]
	if p.Spec.Hostname != "web-0" || p.Spec.Subdomain != "web" || p.Labels[api.LabelStatefulSetPodName] != "web-0" || p.Labels[api.LabelPodIndex] != "0" {
		t.Fatalf("pod identity: hostname %q subdomain %q labels %v", p.Spec.Hostname, p.Spec.Subdomain, p.Labels)
	}
	if v := p.Spec.Volumes; len(v) != 1 || v[0].Name != "data" || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != "data-web-0" {
		t.Fatalf("volumes %+v", v)
	}
	if !claimExists(t, ctx, st, "data-web-0") {
		t.Fatal("claim data-web-0 not made")
	}
	setReady(t, ctx, st, "web-0")
	waitPods(t, ctx, st, "web-0", "web-1")
	setReady(t, ctx, st, "web-1")
	waitPods(t, ctx, st, "web-0", "web-1", "web-2")
	setReady(t, ctx, st, "web-2")
	testutil.Eventually(t, 5*time.Second, func() error {
		o, err := st.Get(ctx, setKind, "default", "web")
		if err != nil {
			return err
		}
		s := o.(*api.StatefulSet).Status
		if s.Replicas != 3 || s.ReadyReplicas != 3 || s.UpdatedReplicas != 3 || s.CurrentRevision == "" || s.CurrentRevision != s.UpdateRevision {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})

	// A deleted pod comes back under its name, with the same claim.
	old := pods(t, ctx, st)["web-1"]
	if _, err := st.Delete(ctx, podKind, "default", "web-1", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		p := pods(t, ctx, st)["web-1"]
		if p == nil || p.UID == old.UID {
			return fmt.Errorf("web-1 not made again")
		}
		if p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-web-1" {
			return fmt.Errorf("claim %s", p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName)
		}
		return nil
	})
}

func TestOrderedScaleDownReverseAndClaimsKept(t *testing.T) {
	ctx, st := start(t)
	k := runKubelet(t, ctx, st)
	if err := st.Create(ctx, newSet("db", 4, nil)); err != nil {
		t.Fatal(err)
	}
	waitPods(t, ctx, st, "db-0", "db-1", "db-2", "db-3")
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := st.Get(ctx, setKind, "default", "db")
		if err != nil {
			return err
		}
		s := o.(*api.StatefulSet)
		one := int32(1)
		s.Spec.Replicas = &one
		s.Generation++
		return st.Update(ctx, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPods(t, ctx, st, "db-0")
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := k.order(); !slices.Equal(got, []string{"db-3", "db-2", "db-1"}) {
			return fmt.Errorf("deleted in order %v, want db-3, db-2, db-1", got)
		}
		return nil
	})
	for _, c := range []string{"data-db-0", "data-db-1", "data-db-2", "data-db-3"} {
		if !claimExists(t, ctx, st, c) {
			t.Errorf("claim %s deleted on scale-down (Retain)", c)
		}
	}
}

func TestParallelAndClaimRetentionDelete(t *testing.T) {
	ctx, st := start(t)
	set := newSet("cache", 3, func(s *api.StatefulSet) {
		s.Spec.PodManagementPolicy = api.ParallelPodManagement
		s.Spec.PersistentVolumeClaimRetentionPolicy = &api.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenScaled: api.DeletePVCRetentionPolicy, WhenDeleted: api.DeletePVCRetentionPolicy}
	})
	if err := st.Create(ctx, set); err != nil {
		t.Fatal(err)
	}
	// Parallel: all three at once, none ready.
	waitPods(t, ctx, st, "cache-0", "cache-1", "cache-2")
	o, err := st.Get(ctx, pvcKind, "default", "data-cache-2")
	if err != nil {
		t.Fatal(err)
	}
	if refs := o.GetObjectMeta().OwnerReferences; len(refs) != 1 || refs[0].Kind != "StatefulSet" || refs[0].Controller != nil {
		t.Fatalf("whenDeleted Delete: claim owner references %+v", refs)
	}
	err = retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := st.Get(ctx, setKind, "default", "cache")
		if err != nil {
			return err
		}
		s := o.(*api.StatefulSet)
		one := int32(1)
		s.Spec.Replicas = &one
		s.Generation++
		return st.Update(ctx, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPods(t, ctx, st, "cache-0")
	testutil.Eventually(t, 5*time.Second, func() error {
		if claimExists(t, ctx, st, "data-cache-1") || claimExists(t, ctx, st, "data-cache-2") {
			return fmt.Errorf("claims of removed ordinals still there (whenScaled Delete)")
		}
		return nil
	})
	if !claimExists(t, ctx, st, "data-cache-0") {
		t.Fatal("claim of a kept ordinal deleted")
	}
}

func TestRollingUpdateReverseWithPartition(t *testing.T) {
	ctx, st := start(t)
	k := runKubelet(t, ctx, st)
	two := int32(1)
	if err := st.Create(ctx, newSet("web", 3, func(s *api.StatefulSet) {
		s.Spec.UpdateStrategy.RollingUpdate = &api.RollingUpdateStatefulSetStrategy{Partition: &two}
	})); err != nil {
		t.Fatal(err)
	}
	before := waitPods(t, ctx, st, "web-0", "web-1", "web-2")
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, p := range pods(t, ctx, st) {
			if p.Status.Phase != api.PodRunning {
				return fmt.Errorf("%s not running", p.Name)
			}
		}
		return nil
	})
	var newRev string
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := st.Get(ctx, setKind, "default", "web")
		if err != nil {
			return err
		}
		s := o.(*api.StatefulSet)
		s.Spec.Template.Spec.Containers[0].Image = "postgres:17"
		s.Generation++
		newRev = statefulset.Revision(s)
		return st.Update(ctx, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		ps := pods(t, ctx, st)
		for _, n := range []string{"web-1", "web-2"} {
			if p := ps[n]; p == nil || p.Labels[api.LabelControllerRevisionHash] != newRev || p.Spec.Containers[0].Image != "postgres:17" {
				return fmt.Errorf("%s not updated", n)
			}
		}
		return nil
	})
	if got := k.order(); !slices.Equal(got, []string{"web-2", "web-1"}) {
		t.Fatalf("updated in order %v, want web-2 then web-1", got)
	}
	if p := pods(t, ctx, st)["web-0"]; p.UID != before["web-0"].UID || p.Spec.Containers[0].Image != "postgres:16" {
		t.Fatal("web-0, below the partition, was updated")
	}
	// Both revisions are stored, numbered in order.
	objs, _, err := st.List(ctx, api.KindOf(&api.ControllerRevision{}), store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]int64{}
	for _, o := range objs {
		r := o.(*api.ControllerRevision)
		revs[r.Name] = r.Revision
	}
	oldRev := before["web-0"].Labels[api.LabelControllerRevisionHash]
	if len(revs) != 2 || revs[oldRev] != 1 || revs[newRev] != 2 {
		t.Fatalf("revisions %v, want %s=1 and %s=2", revs, oldRev, newRev)
	}
	// web-0, below the partition, made again keeps the current revision's
	// template, as in Kubernetes.
	if _, err := st.Delete(ctx, podKind, "default", "web-0", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		p := pods(t, ctx, st)["web-0"]
		if p == nil || p.UID == before["web-0"].UID {
			return fmt.Errorf("web-0 not made again")
		}
		if p.Spec.Containers[0].Image != "postgres:16" || p.Labels[api.LabelControllerRevisionHash] != oldRev {
			return fmt.Errorf("web-0 made again with %s at revision %s, want postgres:16 at %s", p.Spec.Containers[0].Image, p.Labels[api.LabelControllerRevisionHash], oldRev)
		}
		return nil
	})
	// Partition 0: the rollout ends, the update revision becomes current.
	err = retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := st.Get(ctx, setKind, "default", "web")
		if err != nil {
			return err
		}
		s := o.(*api.StatefulSet)
		zero := int32(0)
		s.Spec.UpdateStrategy.RollingUpdate.Partition = &zero
		s.Generation++
		return st.Update(ctx, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		o, err := st.Get(ctx, setKind, "default", "web")
		if err != nil {
			return err
		}
		s := o.(*api.StatefulSet).Status
		if s.CurrentRevision != newRev || s.UpdatedReplicas != 3 || s.ReadyReplicas != 3 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
}
