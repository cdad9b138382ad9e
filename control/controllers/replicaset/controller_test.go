package replicaset_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	podKind = api.KindOf(&api.Pod{})
	rsKind  = api.KindOf(&api.ReplicaSet{})
)

func openStore(t *testing.T) (context.Context, *store.Store) { return frameworktest.OpenStore(t) }

// startController runs a manager with a ReplicaSet controller until the
// returned stop is called (or the test ends).
func startController(t *testing.T, st *store.Store) (stop func()) {
	t.Helper()
	return frameworktest.Run(t, st, nil, func(mgr *framework.Manager) {
		mgr.Add("replicaset", replicaset.New(mgr, st, replicaset.Config{}, slog.New(slog.DiscardHandler)))
	})
}

func newRS(name string, replicas int32) *api.ReplicaSet {
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: "file:///m.wasm"}}},
			},
		},
	}
	api.Default(rs)
	return rs
}

// podsOf lists the store's pods controlled by the ReplicaSet named name
// (by owner name), not being deleted.
func podsOf(t *testing.T, ctx context.Context, st *store.Store, name string) []*api.Pod {
	t.Helper()
	objs, _, err := st.List(ctx, podKind, store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Pod
	for _, o := range objs {
		p := o.(*api.Pod)
		if ref := api.ControllerOf(p); ref != nil && ref.Name == name && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func setReady(t *testing.T, ctx context.Context, st *store.Store, p *api.Pod, ready bool) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, p.Namespace, p.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Pod)
		s := api.ConditionFalse
		if ready {
			s = api.ConditionTrue
		}
		cur.Status.Phase = api.PodRunning
		cur.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: s, LastTransitionTime: time.Now().UTC()})
		return st.Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func getRS(t *testing.T, ctx context.Context, st *store.Store, name string) *api.ReplicaSet {
	t.Helper()
	obj, err := st.Get(ctx, rsKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.ReplicaSet)
}

func scale(t *testing.T, ctx context.Context, st *store.Store, name string, n int32) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		rs := getRS(t, ctx, st, name)
		rs.Spec.Replicas = &n
		return st.Update(ctx, rs)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitPods waits until the ReplicaSet has exactly n pods and its status
// says so, failing at once if it ever has more than most.
func waitPods(t *testing.T, ctx context.Context, st *store.Store, name string, n, most int) []*api.Pod {
	t.Helper()
	var pods []*api.Pod
	testutil.Eventually(t, 10*time.Second, func() error {
		pods = podsOf(t, ctx, st, name)
		if len(pods) > most {
			t.Fatalf("replicaset %s has %d pods, more than %d", name, len(pods), most)
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods, want %d", len(pods), n)
		}
		rs := getRS(t, ctx, st, name)
		if rs.Status.Replicas != int32(n) || rs.Status.ObservedGeneration != rs.Generation {
			return fmt.Errorf("status %+v (generation %d), want replicas %d", rs.Status, rs.Generation, n)
		}
		return nil
	})
	return pods
}

func TestScaleUpAndDown(t *testing.T) {
	ctx, st := openStore(t)
	startController(t, st)
	rs := newRS("web", 3)
	if err := st.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ctx, st, "web", 3, 3)
	for _, p := range pods {
		ref := api.ControllerOf(p)
		if ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != api.AppsVersion {
			t.Fatalf("pod %s owner %+v, want the replicaset %s", p.Name, ref, rs.UID)
		}
		if p.Labels["app"] != "web" || p.Spec.RestartPolicy != api.RestartPolicyAlways {
			t.Fatalf("pod %s not from the template: %+v", p.Name, p)
		}
	}
	// Ready counts only pods whose Ready condition is True.
	setReady(t, ctx, st, pods[0], true)
	setReady(t, ctx, st, pods[1], false)
	testutil.Eventually(t, 5*time.Second, func() error {
		s := getRS(t, ctx, st, "web").Status
		if s.ReadyReplicas != 1 || s.AvailableReplicas != 1 {
			return fmt.Errorf("status %+v, want 1 ready and available", s)
		}
		return nil
	})
	// Scale down to 1: the Ready pod stays, the not-ready ones go.
	scale(t, ctx, st, "web", 1)
	left := waitPods(t, ctx, st, "web", 1, 3)
	if left[0].Name != pods[0].Name {
		t.Fatalf("kept %s, want the ready pod %s", left[0].Name, pods[0].Name)
	}
	scale(t, ctx, st, "web", 5)
	waitPods(t, ctx, st, "web", 5, 5)
	scale(t, ctx, st, "web", 0)
	waitPods(t, ctx, st, "web", 0, 5)
}

func TestReplacesDeletedPod(t *testing.T) {
	ctx, st := openStore(t)
	startController(t, st)
	if err := st.Create(ctx, newRS("web", 2)); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ctx, st, "web", 2, 2)
	if _, err := st.Delete(ctx, podKind, "default", pods[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		now := podsOf(t, ctx, st, "web")
		if len(now) > 2 {
			t.Fatalf("%d pods, more than 2", len(now))
		}
		for _, p := range now {
			if p.Name == pods[0].Name {
				return fmt.Errorf("deleted pod still listed")
			}
		}
		if len(now) != 2 {
			return fmt.Errorf("%d pods, want 2", len(now))
		}
		return nil
	})
}

func TestAdoptAndRelease(t *testing.T) {
	ctx, st := openStore(t)
	orphan := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "orphan", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "file:///m.wasm"}}}}
	api.Default(orphan)
	if err := st.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	other := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "other", Namespace: "default", Labels: map[string]string{"app": "db"}},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "file:///m.wasm"}}}}
	api.Default(other)
	if err := st.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	startController(t, st)
	rs := newRS("web", 2)
	if err := st.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ctx, st, "web", 2, 2)
	adopted := false
	for _, p := range pods {
		adopted = adopted || p.Name == "orphan"
	}
	if !adopted {
		t.Fatalf("the matching orphan was not adopted: %v", pods)
	}
	obj, err := st.Get(ctx, podKind, "default", "other")
	if err != nil {
		t.Fatal(err)
	}
	if api.ControllerOf(obj.(*api.Pod)) != nil {
		t.Fatal("a pod the selector does not match was adopted")
	}
	// A pod relabelled out of the selector is released and replaced.
	err = retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, "default", "orphan")
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		p.Labels = map[string]string{"app": "debug"}
		return st.Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		obj, err := st.Get(ctx, podKind, "default", "orphan")
		if err != nil {
			return err
		}
		if api.ControllerOf(obj.(*api.Pod)) != nil {
			return fmt.Errorf("relabelled pod still owned")
		}
		return nil
	})
	waitPods(t, ctx, st, "web", 2, 2)
}

// TestRestartCreatesNoMore: a controller that restarts reads the stored
// pods and creates none beyond replicas.
func TestRestartCreatesNoMore(t *testing.T) {
	ctx, st := openStore(t)
	stop := startController(t, st)
	if err := st.Create(ctx, newRS("web", 4)); err != nil {
		t.Fatal(err)
	}
	first := waitPods(t, ctx, st, "web", 4, 4)
	stop()
	startController(t, st)
	scale(t, ctx, st, "web", 5) // a change after the restart is acted on
	now := waitPods(t, ctx, st, "web", 5, 5)
	kept := 0
	for _, p := range now {
		for _, f := range first {
			if p.UID == f.UID {
				kept++
			}
		}
	}
	if kept != 4 {
		t.Fatalf("%d of the first 4 pods kept after a restart, want 4", kept)
	}
}

func TestMinReadySeconds(t *testing.T) {
	ctx, st := openStore(t)
	startController(t, st)
	rs := newRS("web", 1)
	rs.Spec.MinReadySeconds = 3600
	if err := st.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ctx, st, "web", 1, 1)
	setReady(t, ctx, st, pods[0], true)
	testutil.Eventually(t, 5*time.Second, func() error {
		s := getRS(t, ctx, st, "web").Status
		if s.ReadyReplicas != 1 {
			return fmt.Errorf("status %+v, want 1 ready", s)
		}
		return nil
	})
	if s := getRS(t, ctx, st, "web").Status; s.AvailableReplicas != 0 {
		t.Fatalf("status %+v: a pod ready for less than minReadySeconds counted available", s)
	}
}

// recorder keeps the events a controller records.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(ref api.ObjectReference, typ, reason, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, reason+": "+fmt.Sprintf(format, args...))
}

func (r *recorder) find(reason string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if strings.HasPrefix(e, reason+": ") {
			return e
		}
	}
	return ""
}

// A template that the namespace's Pod Security level forbids (the label
// set after the ReplicaSet was stored) makes no pod, and says why.
func TestPodSecurityAtCreate(t *testing.T) {
	ctx, st := openStore(t)
	obj, err := st.Get(ctx, api.KindOf(&api.Namespace{}), "", "default")
	if err != nil {
		t.Fatal(err)
	}
	obj.GetObjectMeta().Labels = map[string]string{api.LabelPodSecurityEnforce: "baseline"}
	if err := st.Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctl, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	mgr := framework.NewManager(st, log)
	mgr.Add("replicaset", replicaset.New(mgr, st, replicaset.Config{Recorder: rec}, log))
	go func() { _ = mgr.Run(ctl) }()
	rs := newRS("web", 2)
	priv := true
	rs.Spec.Template.Spec.Containers[0].SecurityContext = &api.SecurityContext{Privileged: &priv}
	if err := st.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if e := rec.find(framework.ReasonFailedCreate); !strings.Contains(e, "privileged") {
			return fmt.Errorf("no FailedCreate event naming privileged: %q", e)
		}
		return nil
	})
	if n := len(podsOf(t, ctx, st, "web")); n != 0 {
		t.Fatalf("%d pods created from a forbidden template", n)
	}
}

// A namespace that is being terminated gets no new pods.
func TestNoPodsInTerminatingNamespace(t *testing.T) {
	ctx, st := openStore(t)
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "doomed"}}
	api.Default(ns)
	now := time.Now().UTC()
	ns.DeletionTimestamp = &now
	ns.Status.Phase = api.NamespaceTerminating
	if err := st.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctl, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	mgr := framework.NewManager(st, log)
	mgr.Add("replicaset", replicaset.New(mgr, st, replicaset.Config{Recorder: rec}, log))
	go func() { _ = mgr.Run(ctl) }()
	rs := newRS("web", 2)
	rs.Namespace = "doomed"
	if err := st.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if e := rec.find(framework.ReasonFailedCreate); !strings.Contains(e, "being terminated") {
			return fmt.Errorf("no FailedCreate event: %q", e)
		}
		return nil
	})
	objs, _, err := st.List(ctx, podKind, store.ListOptions{Namespace: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		t.Fatalf("%d pods created in a terminating namespace", len(objs))
	}
}
