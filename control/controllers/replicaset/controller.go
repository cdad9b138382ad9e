package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/admission/podsecurity"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many ReplicaSets are reconciled at once; default 5.
	Workers int
	// BurstReplicas bounds the pods created or deleted in one reconcile;
	// default 500, as Kubernetes'.
	BurstReplicas int
	// DefaultGracePeriod is the grace period of a deleted pod that names
	// none; default 30s.
	DefaultGracePeriod time.Duration
	// ExpectationsTTL is how long a create or delete the pod cache has not
	// shown holds the ReplicaSet back; default 5m, as Kubernetes'.
	ExpectationsTTL time.Duration
	// Recorder records the controller's events; default none.
	Recorder record.EventRecorder
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Controller reconciles ReplicaSets. Create it with New and add it to its
// Manager. Safe for concurrent use.
type Controller struct {
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	rsets framework.Lister
	pods  framework.Lister
	nss   framework.Lister
	ctl   *framework.Controller
	exp   *expectations
	nodes NodeExists
}

// New returns a ReplicaSet controller over st that reads ReplicaSets and
// pods from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 5
	}
	if cfg.BurstReplicas <= 0 {
		cfg.BurstReplicas = 500
	}
	if cfg.DefaultGracePeriod <= 0 {
		cfg.DefaultGracePeriod = 30 * time.Second
	}
	if cfg.ExpectationsTTL <= 0 {
		cfg.ExpectationsTTL = 5 * time.Minute
	}
	if cfg.Recorder == nil {
		cfg.Recorder = record.Nop{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "replicaset")
	rsInf, podInf := mgr.Informer(replicaSetKind), mgr.Informer(podKind)
	c := &Controller{st: st, cfg: cfg, log: log, rsets: rsInf.Lister(), pods: podInf.Lister(),
		nss: mgr.Informer(api.KindOf(&api.Namespace{})).Lister(),
		exp: newExpectations(cfg.ExpectationsTTL, cfg.Now), nodes: StoreNodeExists(st)}
	c.ctl = framework.NewController("replicaset", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(rsInf, nil)
	// Pods: the handler first settles expectations, then queues the
	// owners (old and new) and, for an orphan, every ReplicaSet that
	// could adopt it. Watch with no keys makes Run wait for the pod cache.
	podInf.AddHandler(framework.Handler{
		OnAdd: func(obj api.Object) {
			p := obj.(*api.Pod)
			if k, ok := c.ownerKey(p); ok {
				c.exp.created(k, p.Name)
				if p.DeletionTimestamp != nil {
					c.exp.deleted(k, p.Name)
				}
			}
			c.enqueuePod(p)
		},
		OnUpdate: func(old, obj api.Object) {
			o, p := old.(*api.Pod), obj.(*api.Pod)
			if k, ok := c.ownerKey(p); ok {
				c.exp.created(k, p.Name)
				if p.DeletionTimestamp != nil {
					c.exp.deleted(k, p.Name)
				}
			}
			c.enqueuePod(p)
			if ok, nk := api.ControllerOf(o), api.ControllerOf(p); ok != nil && (nk == nil || nk.UID != ok.UID) {
				c.enqueuePod(o)
			}
		},
		OnDelete: func(obj api.Object) {
			p := obj.(*api.Pod)
			if k, ok := c.ownerKey(p); ok {
				c.exp.created(k, p.Name)
				c.exp.deleted(k, p.Name)
			}
			c.enqueuePod(p)
		},
	})
	c.ctl.Watch(podInf, func(api.Object) []framework.Key { return nil })
	return c
}

// Run reconciles until ctx ends (the Manager runs the informers) and
// returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// ownerKey returns the key of the pod's controlling ReplicaSet.
func (c *Controller) ownerKey(p *api.Pod) (framework.Key, bool) {
	ref := api.ControllerOf(p)
	if ref == nil || ref.Kind != replicaSetKind.Name {
		return framework.Key{}, false
	}
	return framework.Key{Namespace: p.Namespace, Name: ref.Name}, true
}

// enqueuePod queues the pod's controlling ReplicaSet, or every ReplicaSet
// of its namespace that selects it when it has none.
func (c *Controller) enqueuePod(p *api.Pod) {
	if k, ok := c.ownerKey(p); ok {
		c.ctl.Queue().Add(k)
		return
	}
	if api.ControllerOf(p) != nil {
		return // another kind's
	}
	for _, obj := range c.rsets.List(p.Namespace, nil) {
		rs := obj.(*api.ReplicaSet)
		if sel, err := rs.Spec.Selector.Selector(); err == nil && sel.Matches(labels.Set(p.Labels)) {
			c.ctl.Queue().Add(framework.KeyOf(rs))
		}
	}
}

// Reconcile makes the ReplicaSet key own spec.replicas active pods and
// writes its status. A ReplicaSet that is gone needs nothing (the garbage
// collector deletes its pods).
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.rsets.Get(key.Namespace, key.Name)
	if !ok {
		c.exp.forget(key)
		return framework.Result{}, nil
	}
	rs := obj.(*api.ReplicaSet)
	if rs.Spec.Replicas == nil {
		// Written without defaults (not through the API): default a copy.
		rs = api.DeepCopy(rs)
		api.Default(rs)
	}
	sel, err := rs.Spec.Selector.Selector()
	if err != nil {
		return framework.Result{}, framework.Terminal(fmt.Errorf("replicaset %s: selector: %w", key, err))
	}
	// Whether this controller's own writes are all in the cache is checked
	// before the cache is read: checked after, a write could be seen as
	// done while the list read before it still lacks it, and be made twice.
	settled := c.exp.satisfied(key)
	owned, err := framework.ClaimPods(ctx, c.st, c.pods, rs, sel)
	if err != nil {
		return framework.Result{}, err
	}
	active := make([]*api.Pod, 0, len(owned))
	for _, p := range owned {
		if IsPodActive(p) {
			active = append(active, p)
		}
	}
	var manageErr error
	if rs.DeletionTimestamp == nil && settled {
		manageErr = c.manage(ctx, key, rs, active)
	}
	after, err := c.updateStatus(ctx, rs, active)
	if err := errors.Join(manageErr, err); err != nil {
		return framework.Result{}, err
	}
	return framework.Result{RequeueAfter: after}, nil
}

// manage creates or deletes pods so that rs has spec.replicas active ones.
func (c *Controller) manage(ctx context.Context, key framework.Key, rs *api.ReplicaSet, active []*api.Pod) error {
	want := int(*rs.Spec.Replicas)
	diff := len(active) - want
	switch {
	case diff < 0:
		return c.createPods(ctx, key, rs, min(-diff, c.cfg.BurstReplicas))
	case diff > 0:
		n := min(diff, c.cfg.BurstReplicas)
		victims := slices.Clone(active)
		slices.SortStableFunc(victims, func(a, b *api.Pod) int {
			switch {
			case podLess(a, b):
				return -1
			case podLess(b, a):
				return 1
			}
			return 0
		})
		return c.deletePods(ctx, key, rs, victims[:n])
	}
	return nil
}

// createPods creates n pods in batches that double while they succeed
// (1, 2, 4, ...), as Kubernetes' slow start: a template that cannot be
// created fails once, not n times.
func (c *Controller) createPods(ctx context.Context, key framework.Key, rs *api.ReplicaSet, n int) error {
	for batch, done := 1, 0; done < n; batch *= 2 {
		size := min(batch, n-done)
		var wg sync.WaitGroup
		errs := make([]error, size)
		for i := range size {
			wg.Go(func() { errs[i] = c.createPod(ctx, key, rs) })
		}
		wg.Wait()
		done += size
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// admit checks a pod about to be created as the API would (AdmitPod).
func (c *Controller) admit(ctx context.Context, pod *api.Pod) error {
	return AdmitPod(ctx, c.st, c.nss, pod)
}

// AdmitPod checks a pod a controller is about to create as the API would:
// its namespace (from nss, else st) exists and is not terminating, and the
// pod meets the Pod Security level the namespace enforces (its labels may
// have changed since the template was applied). Every workload controller
// calls it before creating a pod.
func AdmitPod(ctx context.Context, st *store.Store, nss framework.Lister, pod *api.Pod) error {
	var ns *api.Namespace
	if obj, ok := nss.Get("", pod.Namespace); ok {
		ns = obj.(*api.Namespace)
	} else {
		obj, err := st.Get(ctx, api.KindOf(&api.Namespace{}), "", pod.Namespace)
		if err != nil {
			return fmt.Errorf("look up namespace %s: %w", pod.Namespace, err)
		}
		ns = obj.(*api.Namespace)
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == api.NamespaceTerminating {
		return fmt.Errorf("namespace %s is being terminated", pod.Namespace)
	}
	level := podsecurity.NamespaceLevel(ns)
	causes := podsecurity.Check(level, pod)
	if len(causes) == 0 {
		return nil
	}
	parts := make([]string, len(causes))
	for i, cs := range causes {
		parts[i] = cs.Field + ": " + cs.Message
	}
	return fmt.Errorf("pods are forbidden: violates PodSecurity %q of namespace %q: %s", level, pod.Namespace, strings.Join(parts, "; "))
}

func (c *Controller) createPod(ctx context.Context, key framework.Key, rs *api.ReplicaSet) error {
	if err := c.admit(ctx, NewPod(rs)); err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(rs), api.EventTypeWarning, framework.ReasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("replicaset %s/%s: create pod: %w", rs.Namespace, rs.Name, err)
	}
	for attempt := 0; ; attempt++ {
		pod := NewPod(rs)
		c.exp.expectCreate(key, pod.Name)
		err := c.st.Create(ctx, pod)
		if err == nil {
			c.cfg.Recorder.Eventf(api.RefTo(rs), api.EventTypeNormal, framework.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
			return nil
		}
		c.exp.created(key, pod.Name)
		if api.IsAlreadyExists(err) && attempt < 3 {
			continue // a name taken: draw another
		}
		c.cfg.Recorder.Eventf(api.RefTo(rs), api.EventTypeWarning, framework.ReasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("replicaset %s/%s: create pod: %w", rs.Namespace, rs.Name, err)
	}
}

// NewPod returns a new pod of rs's template, named after rs, controlled
// by rs, defaulted.
func NewPod(rs *api.ReplicaSet) *api.Pod {
	t := api.DeepCopy(&api.ReplicaSet{Spec: rs.Spec}).Spec.Template
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{
			Name:            PodName(rs.Name),
			Namespace:       rs.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			OwnerReferences: []api.OwnerReference{api.NewControllerRef(rs)},
		},
		Spec: t.Spec,
	}
	api.Default(pod)
	return pod
}

func (c *Controller) deletePods(ctx context.Context, key framework.Key, rs *api.ReplicaSet, pods []*api.Pod) error {
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i, p := range pods {
		c.exp.expectDelete(key, p.Name)
		wg.Go(func() {
			if err := DeletePod(ctx, c.st, c.nodes, p.Namespace, p.Name, p.UID, c.cfg.DefaultGracePeriod); err != nil {
				c.exp.deleted(key, p.Name)
				c.cfg.Recorder.Eventf(api.RefTo(rs), api.EventTypeWarning, framework.ReasonFailedDelete, "Error deleting: %v", err)
				errs[i] = fmt.Errorf("replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
				return
			}
			c.cfg.Recorder.Eventf(api.RefTo(rs), api.EventTypeNormal, framework.ReasonSuccessfulDelete, "Deleted pod: %s", p.Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// updateStatus writes rs's status from its active pods when it changed,
// and returns how long until a Ready pod becomes available (0: none).
func (c *Controller) updateStatus(ctx context.Context, rs *api.ReplicaSet, active []*api.Pod) (time.Duration, error) {
	now := c.cfg.Now()
	st := api.ReplicaSetStatus{Replicas: int32(len(active)), ObservedGeneration: rs.Generation}
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var after time.Duration
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if IsPodReady(p) {
			st.ReadyReplicas++
		}
		if ok, left := IsPodAvailable(p, rs.Spec.MinReadySeconds, now); ok {
			st.AvailableReplicas++
		} else if left > 0 && (after == 0 || left < after) {
			after = left
		}
	}
	if rs.Status == st {
		return after, nil
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, replicaSetKind, rs.Namespace, rs.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.ReplicaSet)
		if cur.UID != rs.UID || cur.Status == st {
			return nil
		}
		if cur.Generation != rs.Generation {
			// The spec changed since the cache's copy: its reconcile writes.
			return nil
		}
		cur.Status = st
		return c.st.Update(ctx, cur)
	})
	if err != nil && !api.IsNotFound(err) {
		return after, fmt.Errorf("replicaset %s/%s: update status: %w", rs.Namespace, rs.Name, err)
	}
	return after, nil
}
