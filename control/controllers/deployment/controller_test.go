package deployment_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/deployment"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
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

// startControllers runs a manager with the ReplicaSet and Deployment
// controllers until stop is called (or the test ends).
func startControllers(t *testing.T, st *store.Store) (stop func()) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	return frameworktest.Run(t, st, log, func(mgr *framework.Manager) {
		mgr.Add("replicaset", replicaset.New(mgr, st, replicaset.Config{}, log))
		mgr.Add("deployment", deployment.New(mgr, st, deployment.Config{}, log))
	})
}

func newDeployment(name string, replicas int32, image string) *api.Deployment {
	d := &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.DeploymentSpec{
			Replicas: &replicas,
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: image}}},
			},
		},
	}
	api.Default(d)
	return d
}

func getDeploy(t *testing.T, ctx context.Context, st *store.Store, name string) *api.Deployment {
	t.Helper()
	obj, err := st.Get(ctx, deployKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.Deployment)
}

func updateDeploy(t *testing.T, ctx context.Context, st *store.Store, name string, f func(d *api.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		d := getDeploy(t, ctx, st, name)
		f(d)
		return st.Update(ctx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func setReady(ctx context.Context, st *store.Store, ns, name string) error {
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, ns, name)
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		p.Status.Phase = api.PodRunning
		p.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: time.Now().UTC()})
		return st.Update(ctx, p)
	})
	if api.IsNotFound(err) {
		return nil
	}
	return err
}

// cluster follows every pod change in revision order (a store watch), and
// plays the node agents: a new pod becomes Ready a moment later when ready
// is on. check runs on the state after every single change.
type cluster struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	mu    sync.Mutex
	pods  map[string]*api.Pod
	ready bool
	check func(pods map[string]*api.Pod) error
	err   error
	wg    sync.WaitGroup
}

func watchCluster(t *testing.T, ctx context.Context, st *store.Store) *cluster {
	c := &cluster{t: t, ctx: ctx, st: st, pods: map[string]*api.Pod{}, ready: true}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := st.Watch(wctx, podKind, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			if ev.Object == nil {
				continue
			}
			p := ev.Object.(*api.Pod)
			c.mu.Lock()
			if ev.Type == store.Deleted {
				delete(c.pods, p.Name)
			} else {
				_, known := c.pods[p.Name]
				c.pods[p.Name] = p
				if !known && c.ready {
					c.wg.Go(func() {
						time.Sleep(10 * time.Millisecond)
						_ = setReady(ctx, st, p.Namespace, p.Name)
					})
				}
			}
			if c.check != nil && c.err == nil {
				c.err = c.check(c.pods)
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; c.wg.Wait() })
	return c
}

func (c *cluster) setCheck(f func(pods map[string]*api.Pod) error) {
	c.mu.Lock()
	c.check = f
	c.mu.Unlock()
}

func (c *cluster) setReadying(on bool) {
	c.mu.Lock()
	c.ready = on
	c.mu.Unlock()
}

// readyAll makes every pod Ready (for pods created while readying was off).
func (c *cluster) readyAll() {
	c.mu.Lock()
	var names []string
	for n, p := range c.pods {
		if !replicaset.IsPodReady(p) {
			names = append(names, n)
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		if err := setReady(c.ctx, c.st, "default", n); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// bounds checks a rolling update: active pods at most replicas+surge,
// Ready pods at least replicas-unavailable.
func bounds(replicas, surge, unavail int) func(map[string]*api.Pod) error {
	return func(pods map[string]*api.Pod) error {
		active, ready := 0, 0
		for _, p := range pods {
			if replicaset.IsPodActive(p) {
				active++
				if replicaset.IsPodReady(p) {
					ready++
				}
			}
		}
		if active > replicas+surge {
			return fmt.Errorf("%d active pods, more than replicas %d + maxSurge %d", active, replicas, surge)
		}
		if ready < replicas-unavail {
			return fmt.Errorf("%d ready pods, fewer than replicas %d - maxUnavailable %d", ready, replicas, unavail)
		}
		return nil
	}
}

// waitRolledOut waits until the Deployment reports a complete rollout of
// its current generation with every pod on image.
func waitRolledOut(t *testing.T, ctx context.Context, st *store.Store, c *cluster, name, image string, replicas int) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() error {
		if err := c.failed(); err != nil {
			t.Fatal(err)
		}
		d := getDeploy(t, ctx, st, name)
		msg, done, err := deployment.Describe(d)
		if err != nil {
			t.Fatal(err)
		}
		if !done {
			return fmt.Errorf("%s", msg)
		}
		objs, _, err := st.List(ctx, podKind, store.ListOptions{Namespace: "default"})
		if err != nil {
			return err
		}
		n := 0
		for _, o := range objs {
			p := o.(*api.Pod)
			if p.Spec.Containers[0].Image != image {
				return fmt.Errorf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
			}
			n++
		}
		if n != replicas {
			return fmt.Errorf("%d pods, want %d", n, replicas)
		}
		return nil
	})
}

func ownedRS(t *testing.T, ctx context.Context, st *store.Store, name string) []*api.ReplicaSet {
	t.Helper()
	d := getDeploy(t, ctx, st, name)
	objs, _, err := st.List(ctx, rsKind, store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	return deployment.Owned(d, objs)
}

func TestRollingUpdateBounds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		replicas       int32
		surge, unavail api.IntOrString
		wantS, wantU   int // resolved
	}{
		{"surge 1 unavailable 1", 4, api.FromInt(1), api.FromInt(1), 1, 1},
		{"surge 0 unavailable 1", 3, api.FromInt(0), api.FromInt(1), 0, 1},
		{"surge 2 unavailable 0", 3, api.FromInt(2), api.FromInt(0), 2, 0},
		{"defaults 25%", 8, api.FromString("25%"), api.FromString("25%"), 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st := openStore(t)
			c := watchCluster(t, ctx, st)
			startControllers(t, st)
			d := newDeployment("web", tc.replicas, "app:v1")
			d.Spec.Strategy.RollingUpdate = &api.RollingUpdateDeployment{MaxSurge: &tc.surge, MaxUnavailable: &tc.unavail}
			if err := st.Create(ctx, d); err != nil {
				t.Fatal(err)
			}
			waitRolledOut(t, ctx, st, c, "web", "app:v1", int(tc.replicas))
			c.setCheck(bounds(int(tc.replicas), tc.wantS, tc.wantU))
			for _, img := range []string{"app:v2", "app:v3"} {
				updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = img })
				waitRolledOut(t, ctx, st, c, "web", img, int(tc.replicas))
			}
			d = getDeploy(t, ctx, st, "web")
			if d.Annotations[api.AnnotationRevision] != "3" {
				t.Fatalf("revision %q after two rollouts, want 3", d.Annotations[api.AnnotationRevision])
			}
			rss := ownedRS(t, ctx, st, "web")
			if len(rss) != 3 {
				t.Fatalf("%d replicasets, want 3 (history kept)", len(rss))
			}
			for _, rs := range rss {
				h := rs.Labels[api.LabelPodTemplateHash]
				if h == "" || rs.Spec.Selector.MatchLabels[api.LabelPodTemplateHash] != h || rs.Spec.Template.Labels[api.LabelPodTemplateHash] != h {
					t.Fatalf("replicaset %s lacks a consistent pod-template-hash: %+v", rs.Name, rs)
				}
			}
			if cond := d.Status.Condition(api.DeploymentAvailable); cond == nil || cond.Status != api.ConditionTrue {
				t.Fatalf("Available condition %+v, want True", cond)
			}
			if cond := d.Status.Condition(api.DeploymentProgressing); cond == nil || cond.Reason != api.ReasonNewRSAvailable {
				t.Fatalf("Progressing condition %+v, want NewReplicaSetAvailable", cond)
			}
		})
	}
}

func TestUndoRestoresPreviousTemplate(t *testing.T) {
	ctx, st := openStore(t)
	c := watchCluster(t, ctx, st)
	startControllers(t, st)
	if err := st.Create(ctx, newDeployment("web", 3, "app:v1")); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 3)
	first := ownedRS(t, ctx, st, "web")[0]
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	waitRolledOut(t, ctx, st, c, "web", "app:v2", 3)
	c.setCheck(bounds(3, 1, 0)) // 25% of 3: surge 1, unavailable 0
	d := getDeploy(t, ctx, st, "web")
	tmpl, rev, err := deployment.RollbackTemplate(d, ownedRS(t, ctx, st, "web"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 1 {
		t.Fatalf("undo goes to revision %d, want 1", rev)
	}
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { d.Spec.Template = *tmpl })
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 3)
	rss := ownedRS(t, ctx, st, "web")
	if len(rss) != 2 {
		t.Fatalf("%d replicasets after undo, want 2 (the first one is current again)", len(rss))
	}
	cur := rss[len(rss)-1]
	if cur.UID != first.UID || deployment.Revision(cur) != 3 || cur.Annotations[api.AnnotationRevisionHistory] != "1" {
		t.Fatalf("current replicaset %s revision %d history %q; want the first one (%s) at revision 3, history 1",
			cur.Name, deployment.Revision(cur), cur.Annotations[api.AnnotationRevisionHistory], first.Name)
	}
	if _, _, err := deployment.RollbackTemplate(getDeploy(t, ctx, st, "web"), rss, 7); err == nil {
		t.Fatal("undo to a missing revision succeeded")
	}
}

func TestRecreate(t *testing.T) {
	ctx, st := openStore(t)
	c := watchCluster(t, ctx, st)
	startControllers(t, st)
	d := newDeployment("web", 3, "app:v1")
	d.Spec.Strategy = api.DeploymentStrategy{Type: api.RecreateDeploymentStrategyType}
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 3)
	c.setCheck(func(pods map[string]*api.Pod) error {
		imgs := map[string]bool{}
		for _, p := range pods {
			imgs[p.Spec.Containers[0].Image] = true
		}
		if len(imgs) > 1 {
			return fmt.Errorf("old and new pods at once under Recreate: %v", imgs)
		}
		return nil
	})
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	waitRolledOut(t, ctx, st, c, "web", "app:v2", 3)
}

// TestRestartMidRollout: a controller stopped while a rollout waits for
// pods to become Ready continues from the stored state when started again,
// within the bounds.
func TestRestartMidRollout(t *testing.T) {
	ctx, st := openStore(t)
	c := watchCluster(t, ctx, st)
	stop := startControllers(t, st)
	d := newDeployment("web", 4, "app:v1")
	one := api.FromInt(1)
	d.Spec.Strategy.RollingUpdate = &api.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &one}
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 4)
	c.setCheck(bounds(4, 1, 1))
	c.setReadying(false) // the new pods hang, not Ready
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	testutil.Eventually(t, 5*time.Second, func() error {
		rss := ownedRS(t, ctx, st, "web")
		if len(rss) != 2 || *rss[1].Spec.Replicas != 2 || *rss[0].Spec.Replicas != 3 {
			return fmt.Errorf("rollout not at its first step yet")
		}
		return nil
	})
	stop()
	if err := c.failed(); err != nil {
		t.Fatal(err)
	}
	startControllers(t, st)
	c.setReadying(true)
	c.readyAll()
	waitRolledOut(t, ctx, st, c, "web", "app:v2", 4)
	if n := len(ownedRS(t, ctx, st, "web")); n != 2 {
		t.Fatalf("%d replicasets after the restart, want 2 (no second new one)", n)
	}
}

func TestPauseAndProgressDeadline(t *testing.T) {
	ctx, st := openStore(t)
	c := watchCluster(t, ctx, st)
	startControllers(t, st)
	d := newDeployment("web", 2, "app:v1")
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 2)
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "app:v2"
	})
	testutil.Eventually(t, 5*time.Second, func() error {
		d := getDeploy(t, ctx, st, "web")
		if cond := d.Status.Condition(api.DeploymentProgressing); d.Status.ObservedGeneration != d.Generation || cond == nil || cond.Reason != api.ReasonDeploymentPaused {
			return fmt.Errorf("paused deployment not observed yet: %+v", d.Status)
		}
		return nil
	})
	if n := len(ownedRS(t, ctx, st, "web")); n != 1 {
		t.Fatalf("a paused deployment made a new replicaset (%d)", n)
	}
	// Resumed with pods that never become Ready and a 1 s deadline.
	c.setReadying(false)
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) {
		d.Spec.Paused = false
		one := int32(1)
		d.Spec.ProgressDeadlineSeconds = &one
	})
	testutil.Eventually(t, 5*time.Second, func() error {
		cond := getDeploy(t, ctx, st, "web").Status.Condition(api.DeploymentProgressing)
		if cond == nil || cond.Status != api.ConditionFalse || cond.Reason != api.ReasonProgressDeadlineExceeded {
			return fmt.Errorf("Progressing %+v, want False ProgressDeadlineExceeded", cond)
		}
		return nil
	})
	if _, _, err := deployment.Describe(getDeploy(t, ctx, st, "web")); err == nil {
		t.Fatal("rollout status of a stuck deployment is not an error")
	}
}

func TestScaleDeployment(t *testing.T) {
	ctx, st := openStore(t)
	c := watchCluster(t, ctx, st)
	startControllers(t, st)
	if err := st.Create(ctx, newDeployment("web", 2, "app:v1")); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 2)
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { n := int32(5); d.Spec.Replicas = &n })
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 5)
	updateDeploy(t, ctx, st, "web", func(d *api.Deployment) { n := int32(1); d.Spec.Replicas = &n })
	waitRolledOut(t, ctx, st, c, "web", "app:v1", 1)
}

// Pods that are not Ready keep a Deployment from Available; once they are
// Ready it is Available.
func TestAvailableCountsOnlyReadyPods(t *testing.T) {
	ctx, st := openStore(t)
	c := watchCluster(t, ctx, st)
	c.setReadying(false)
	startControllers(t, st)
	if err := st.Create(ctx, newDeployment("web", 2, "app:v1")); err != nil {
		t.Fatal(err)
	}
	cond := func() *api.DeploymentCondition {
		return getDeploy(t, ctx, st, "web").Status.Condition(api.DeploymentAvailable)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		d := getDeploy(t, ctx, st, "web")
		if d.Status.Replicas != 2 {
			return fmt.Errorf("status %+v, want 2 replicas", d.Status)
		}
		if c := cond(); c == nil || c.Status != api.ConditionFalse || c.Reason != api.ReasonMinimumReplicasUnavailable {
			return fmt.Errorf("Available %+v, want False", c)
		}
		return nil
	})
	if s := getDeploy(t, ctx, st, "web").Status; s.AvailableReplicas != 0 || s.ReadyReplicas != 0 || s.UnavailableReplicas != 2 {
		t.Fatalf("status %+v counts pods that are not Ready", s)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		c.readyAll() // again, for a pod this test's watch saw late
		if c := cond(); c == nil || c.Status != api.ConditionTrue {
			return fmt.Errorf("Available %+v, want True", c)
		}
		return nil
	})
}
