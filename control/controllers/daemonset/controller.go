package daemonset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var (
	podKind  = api.KindOf(&api.Pod{})
	nodeKind = api.KindOf(&api.Node{})
	dsKind   = api.KindOf(&api.DaemonSet{})
)

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many DaemonSets are reconciled at once; default 2.
	Workers int
	// DefaultGracePeriod is the grace period of a deleted pod that names
	// none; default 30s.
	DefaultGracePeriod time.Duration
	// ExpectationsTTL is how long a create or delete the pod cache has not
	// shown holds the DaemonSet back; default 5m, as Kubernetes'.
	ExpectationsTTL time.Duration
	// FailedPodBackoff is how long a node whose daemon pod failed waits
	// before the next failure there is replaced, doubling to
	// FailedPodBackoffMax; default 1s and 15m, as Kubernetes'.
	FailedPodBackoff, FailedPodBackoffMax time.Duration
	// Recorder records the controller's events; default none.
	Recorder record.EventRecorder
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Controller reconciles DaemonSets. Create it with New and add it to its
// Manager. Safe for concurrent use.
type Controller struct {
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	dsets framework.Lister
	pods  framework.Lister
	nodes framework.Lister
	nss   framework.Lister
	ctl   *framework.Controller
	exp   *expectations
	exist replicaset.NodeExists
	fails *failBackoff
}

// New returns a DaemonSet controller over st that reads DaemonSets, pods,
// nodes and namespaces from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.DefaultGracePeriod <= 0 {
		cfg.DefaultGracePeriod = 30 * time.Second
	}
	if cfg.ExpectationsTTL <= 0 {
		cfg.ExpectationsTTL = 5 * time.Minute
	}
	if cfg.FailedPodBackoff <= 0 {
		cfg.FailedPodBackoff = time.Second
	}
	if cfg.FailedPodBackoffMax <= 0 {
		cfg.FailedPodBackoffMax = 15 * time.Minute
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
	log = log.With("controller", "daemonset")
	dsInf, podInf, nodeInf := mgr.Informer(dsKind), mgr.Informer(podKind), mgr.Informer(nodeKind)
	c := &Controller{st: st, cfg: cfg, log: log, dsets: dsInf.Lister(), pods: podInf.Lister(),
		nodes: nodeInf.Lister(), nss: mgr.Informer(api.KindOf(&api.Namespace{})).Lister(),
		exp: newExpectations(cfg.ExpectationsTTL, cfg.Now), exist: replicaset.StoreNodeExists(st),
		fails: newFailBackoff(cfg.FailedPodBackoff, cfg.FailedPodBackoffMax)}
	c.ctl = framework.NewController("daemonset", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(dsInf, nil)
	settle := func(p *api.Pod) {
		if k, ok := ownerKey(p); ok {
			c.exp.seen(k, p.Name, p.DeletionTimestamp != nil)
		}
	}
	podInf.AddHandler(framework.Handler{
		OnAdd:    func(obj api.Object) { settle(obj.(*api.Pod)) },
		OnUpdate: func(_, obj api.Object) { settle(obj.(*api.Pod)) },
		OnDelete: func(obj api.Object) {
			p := obj.(*api.Pod)
			if k, ok := ownerKey(p); ok {
				c.exp.seen(k, p.Name, true)
			}
		},
	})
	// A pod queues its controlling DaemonSet; an orphan, every DaemonSet
	// of its namespace that selects it (to adopt it).
	c.ctl.Watch(podInf, func(obj api.Object) []framework.Key {
		p := obj.(*api.Pod)
		if k, ok := ownerKey(p); ok {
			return []framework.Key{k}
		}
		if api.ControllerOf(p) != nil {
			return nil
		}
		var keys []framework.Key
		for _, o := range c.dsets.List(p.Namespace, nil) {
			ds := o.(*api.DaemonSet)
			if sel, err := ds.Spec.Selector.Selector(); err == nil && sel.Matches(labels.Set(p.Labels)) {
				keys = append(keys, framework.KeyOf(ds))
			}
		}
		return keys
	})
	// Any node change may change which DaemonSets want it.
	c.ctl.Watch(nodeInf, func(api.Object) []framework.Key {
		objs := c.dsets.List("", nil)
		keys := make([]framework.Key, len(objs))
		for i, o := range objs {
			keys[i] = framework.KeyOf(o)
		}
		return keys
	})
	return c
}

// Run reconciles until ctx ends (the Manager runs the informers) and
// returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

func ownerKey(p *api.Pod) (framework.Key, bool) {
	ref := api.ControllerOf(p)
	if ref == nil || ref.Kind != dsKind.Name {
		return framework.Key{}, false
	}
	return framework.Key{Namespace: p.Namespace, Name: ref.Name}, true
}

// TemplateHash returns the controller-revision-hash of a template: a
// 32-bit FNV-1a hash of its JSON, in decimal.
func TemplateHash(t *api.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return strconv.FormatUint(uint64(h.Sum32()), 10)
}

// NodeShouldRun reports whether a daemon pod of spec should be created on
// node (shouldRun) and whether one already there may stay
// (shouldContinue), as Kubernetes' NodeShouldRunDaemonPod: the
// nodeSelector must select the node; every NoSchedule and NoExecute taint
// must be tolerated to create, every NoExecute taint to stay. A node being
// deleted runs nothing new.
func NodeShouldRun(node *api.Node, spec *api.PodSpec) (shouldRun, shouldContinue bool) {
	if !labels.SelectorFromSet(spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false, false
	}
	tols := slices.Clone(spec.Tolerations)
	s := api.PodSpec{Tolerations: tols, HostNetwork: spec.HostNetwork}
	api.AddDaemonTolerations(&s)
	shouldRun, shouldContinue = node.DeletionTimestamp == nil, true
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect == api.TaintPreferNoSchedule {
			continue
		}
		if slices.ContainsFunc(s.Tolerations, func(tol api.Toleration) bool { return tol.ToleratesTaint(t) }) {
			continue
		}
		shouldRun = false
		if t.Effect == api.TaintNoExecute {
			shouldContinue = false
		}
	}
	return shouldRun, shouldContinue
}

// NewPod returns a new pod of ds's template for node, bound to it through
// spec.nodeName, labelled with hash, controlled by ds, with the daemon
// tolerations, defaulted.
func NewPod(ds *api.DaemonSet, node, hash string) *api.Pod {
	t := api.DeepCopy(&api.DaemonSet{Spec: ds.Spec}).Spec.Template
	lbls := make(map[string]string, len(t.Labels)+1)
	for k, v := range t.Labels {
		lbls[k] = v
	}
	lbls[api.LabelControllerRevisionHash] = hash
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{
			Name:            replicaset.PodName(ds.Name),
			Namespace:       ds.Namespace,
			Labels:          lbls,
			Annotations:     t.Annotations,
			OwnerReferences: []api.OwnerReference{api.NewControllerRef(ds)},
		},
		Spec: t.Spec,
	}
	pod.Spec.NodeName = node
	api.AddDaemonTolerations(&pod.Spec)
	api.Default(pod)
	return pod
}

// Reconcile makes the DaemonSet key run one pod on each node that matches
// it, rolls template changes, and writes its status. A DaemonSet that is
// gone needs nothing (the garbage collector deletes its pods).
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.dsets.Get(key.Namespace, key.Name)
	if !ok {
		c.exp.forget(key)
		return framework.Result{}, nil
	}
	ds := obj.(*api.DaemonSet)
	if ds.Spec.UpdateStrategy.Type == "" || ds.Spec.RevisionHistoryLimit == nil {
		// Written without defaults (not through the API): default a copy.
		ds = api.DeepCopy(ds)
		api.Default(ds)
	}
	// Expectations first, then the cache: a list read before the last
	// reconcile's writes were all shown could act on them again (delete a
	// pod already marked, which writes nothing, so its expectation would
	// never settle; or create a second pod on a node).
	canManage := ds.DeletionTimestamp == nil && c.exp.satisfied(key)
	sel, err := ds.Spec.Selector.Selector()
	if err != nil {
		return framework.Result{}, framework.Terminal(fmt.Errorf("daemonset %s: selector: %w", key, err))
	}
	owned, claimErr := framework.ClaimPods(ctx, c.st, c.pods, ds, sel)
	hash := TemplateHash(&ds.Spec.Template)
	now := c.cfg.Now()

	// The pods ds controls, by node.
	byNode := map[string][]*api.Pod{}
	var failed []*api.Pod
	for _, p := range owned {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Status.Phase == api.PodFailed {
			failed = append(failed, p)
			continue
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}

	var (
		create   []string
		del      []*api.Pod
		st       = api.DaemonSetStatus{ObservedGeneration: ds.Generation}
		after    time.Duration
		old      []*api.Pod // available pods of an old template on nodes that want one
		nodeSeen = map[string]bool{}
	)
	available := func(p *api.Pod) bool {
		ok, left := replicaset.IsPodAvailable(p, ds.Spec.MinReadySeconds, now)
		if !ok && left > 0 && (after == 0 || left < after) {
			after = left
		}
		return ok
	}
	// A failed pod is deleted (and its node gets a new one) unless its node
	// is in back-off from an earlier failure: then the node waits.
	hold := map[string]bool{}
	for _, p := range failed {
		bk := string(ds.UID) + "/" + p.Spec.NodeName
		if left := c.fails.left(bk, now); left > 0 {
			hold[p.Spec.NodeName] = true
			if after == 0 || left < after {
				after = left
			}
			continue
		}
		if canManage {
			c.fails.next(bk, now)
		}
		del = append(del, p)
	}
	unavailable := 0
	rolling := ds.Spec.UpdateStrategy.Type == api.RollingUpdateDaemonSetStrategyType
	var maxSurge int32
	if rolling {
		total := int32(0)
		for _, o := range c.nodes.List("", nil) {
			if run, _ := NodeShouldRun(o.(*api.Node), &ds.Spec.Template.Spec); run {
				total++
			}
		}
		v, err := api.ScaledValue(ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge, total, true)
		if err != nil {
			return framework.Result{}, framework.Terminal(fmt.Errorf("daemonset %s: maxSurge: %w", key, err))
		}
		maxSurge = v
	}
	// surging: a rolling update adds the new pod beside the old one
	// (maxSurge > 0) instead of deleting the old one first.
	surging := rolling && maxSurge > 0
	surged := 0            // nodes running an old and a new pod not yet available
	var surgeable []string // nodes whose available old pod may get a new one beside it
	for _, o := range c.nodes.List("", nil) {
		n := o.(*api.Node)
		nodeSeen[n.Name] = true
		run, cont := NodeShouldRun(n, &ds.Spec.Template.Spec)
		pods := byNode[n.Name]
		if run {
			st.DesiredNumberScheduled++
		}
		switch {
		case !cont || (!run && len(pods) > 0 && n.DeletionTimestamp != nil):
			if len(pods) > 0 {
				st.NumberMisscheduled++
			}
			del = append(del, pods...)
			continue
		case !run:
			// Kept (an untolerated NoSchedule taint added later): counted
			// as misscheduled, as Kubernetes.
			if len(pods) > 0 {
				st.NumberMisscheduled++
			}
			continue
		case len(pods) == 0:
			if !hold[n.Name] {
				create = append(create, n.Name)
			}
			unavailable++
			continue
		}
		st.CurrentNumberScheduled++
		// Keep one pod: the current template's, else the oldest; while a
		// surge is in progress a node keeps its old pod beside the new one
		// until the new one is available.
		slices.SortStableFunc(pods, func(a, b *api.Pod) int {
			ua, ub := a.Labels[api.LabelControllerRevisionHash] == hash, b.Labels[api.LabelControllerRevisionHash] == hash
			if ua != ub {
				if ua {
					return -1
				}
				return 1
			}
			return a.CreationTimestamp.Compare(b.CreationTimestamp)
		})
		keep := pods[0]
		var olds []*api.Pod
		for _, p := range pods[1:] {
			if p.Labels[api.LabelControllerRevisionHash] == hash {
				del = append(del, p) // a second pod of the current template
			} else {
				olds = append(olds, p)
			}
		}
		updated := keep.Labels[api.LabelControllerRevisionHash] == hash
		avail := available(keep)
		switch {
		case updated && len(olds) > 0 && surging:
			if avail {
				del = append(del, olds...) // the new pod took over
			} else {
				surged++
				avail = available(olds[0]) // the old one still serves
				del = append(del, olds[1:]...)
			}
		case updated:
			del = append(del, olds...)
		default:
			del = append(del, olds...) // only old pods: keep the oldest
		}
		if replicaset.IsPodReady(keep) {
			st.NumberReady++
		}
		if avail {
			st.NumberAvailable++
		} else {
			unavailable++
		}
		if updated {
			st.UpdatedNumberScheduled++
			continue
		}
		if !rolling {
			continue
		}
		switch {
		case surging && !avail:
			create = append(create, n.Name) // nothing served here anyway: a new pod at once
		case surging:
			surgeable = append(surgeable, n.Name)
		case !avail:
			del = append(del, keep) // already unavailable: replace at once
		default:
			old = append(old, keep)
		}
	}
	// Pods on nodes that no longer exist.
	for name, pods := range byNode {
		if !nodeSeen[name] {
			del = append(del, pods...)
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	if st.NumberUnavailable < 0 {
		st.NumberUnavailable = 0
	}
	if surging {
		slices.Sort(surgeable)
		if n := int(maxSurge) - surged; n > 0 {
			create = append(create, surgeable[:min(n, len(surgeable))]...)
		}
	}
	if rolling && len(old) > 0 {
		maxUnavail, err := api.ScaledValue(ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable, st.DesiredNumberScheduled, true)
		if err != nil {
			return framework.Result{}, framework.Terminal(fmt.Errorf("daemonset %s: maxUnavailable: %w", key, err))
		}
		budget := int(maxUnavail) - unavailable
		// Oldest first, so a rollout proceeds in a stable node order.
		slices.SortStableFunc(old, func(a, b *api.Pod) int { return cmpStr(a.Spec.NodeName, b.Spec.NodeName) })
		if budget > 0 {
			del = append(del, old[:min(budget, len(old))]...)
		}
	}

	manageErr := claimErr
	if claimErr == nil && canManage {
		manageErr = errors.Join(c.createPods(ctx, key, ds, hash, create), c.deletePods(ctx, key, ds, del))
	}
	if err := errors.Join(manageErr, c.updateStatus(ctx, ds, st)); err != nil {
		return framework.Result{}, err
	}
	return framework.Result{RequeueAfter: after}, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *Controller) createPods(ctx context.Context, key framework.Key, ds *api.DaemonSet, hash string, nodes []string) error {
	if len(nodes) == 0 {
		return nil
	}
	if err := replicaset.AdmitPod(ctx, c.st, c.nss, NewPod(ds, nodes[0], hash)); err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(ds), api.EventTypeWarning, framework.ReasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("daemonset %s/%s: create pod: %w", ds.Namespace, ds.Name, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, node := range nodes {
		wg.Go(func() {
			pod := NewPod(ds, node, hash)
			c.exp.expect(key, pod.Name, false)
			if err := c.st.Create(ctx, pod); err != nil {
				c.exp.seen(key, pod.Name, true)
				c.cfg.Recorder.Eventf(api.RefTo(ds), api.EventTypeWarning, framework.ReasonFailedCreate, "Error creating: %v", err)
				errs[i] = fmt.Errorf("daemonset %s/%s: create pod on node %s: %w", ds.Namespace, ds.Name, node, err)
				return
			}
			c.cfg.Recorder.Eventf(api.RefTo(ds), api.EventTypeNormal, framework.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Controller) deletePods(ctx context.Context, key framework.Key, ds *api.DaemonSet, pods []*api.Pod) error {
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i, p := range pods {
		c.exp.expect(key, p.Name, true)
		wg.Go(func() {
			if err := replicaset.DeletePod(ctx, c.st, c.exist, p.Namespace, p.Name, p.UID, c.cfg.DefaultGracePeriod); err != nil {
				c.exp.seen(key, p.Name, true)
				c.cfg.Recorder.Eventf(api.RefTo(ds), api.EventTypeWarning, framework.ReasonFailedDelete, "Error deleting: %v", err)
				errs[i] = fmt.Errorf("daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
				return
			}
			c.cfg.Recorder.Eventf(api.RefTo(ds), api.EventTypeNormal, framework.ReasonSuccessfulDelete, "Deleted pod: %s", p.Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Controller) updateStatus(ctx context.Context, ds *api.DaemonSet, st api.DaemonSetStatus) error {
	if ds.Status == st {
		return nil
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, dsKind, ds.Namespace, ds.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.DaemonSet)
		if cur.UID != ds.UID || cur.Status == st || cur.Generation != ds.Generation {
			return nil // gone, unchanged, or its new spec's reconcile writes
		}
		cur.Status = st
		return c.st.Update(ctx, cur)
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("daemonset %s/%s: update status: %w", ds.Namespace, ds.Name, err)
	}
	return nil
}
