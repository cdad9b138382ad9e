package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
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
	podKind        = api.KindOf(&api.Pod{})
	replicaSetKind = api.KindOf(&api.ReplicaSet{})
	deploymentKind = api.KindOf(&api.Deployment{})
)

// ReasonScalingReplicaSet is the event reason of every scale of a
// ReplicaSet, as Kubernetes'.
const ReasonScalingReplicaSet = "ScalingReplicaSet"

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many Deployments are reconciled at once; default 5.
	Workers int
	// Recorder records the controller's events; default none.
	Recorder record.EventRecorder
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Controller reconciles Deployments. Create it with New and add it to its
// Manager. Safe for concurrent use.
type Controller struct {
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	deps  framework.Lister
	rsets framework.Lister
	pods  framework.Lister
	ctl   *framework.Controller
}

// New returns a Deployment controller over st that reads Deployments,
// ReplicaSets and pods from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 5
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
	log = log.With("controller", "deployment")
	dInf, rsInf, podInf := mgr.Informer(deploymentKind), mgr.Informer(replicaSetKind), mgr.Informer(podKind)
	c := &Controller{st: st, cfg: cfg, log: log, deps: dInf.Lister(), rsets: rsInf.Lister(), pods: podInf.Lister()}
	c.ctl = framework.NewController("deployment", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(dInf, nil)
	c.ctl.Watch(rsInf, c.rsOwner)
	// A pod's readiness moves a rollout: map it to its ReplicaSet's owner.
	c.ctl.Watch(podInf, func(obj api.Object) []framework.Key {
		ref := api.ControllerOf(obj)
		if ref == nil || ref.Kind != replicaSetKind.Name {
			return nil
		}
		rs, ok := c.rsets.Get(obj.GetObjectMeta().Namespace, ref.Name)
		if !ok {
			return nil
		}
		return c.rsOwner(rs)
	})
	return c
}

// Run reconciles until ctx ends (the Manager runs the informers) and
// returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// rsOwner maps a ReplicaSet to its controlling Deployment, or an orphan to
// every Deployment of its namespace that selects it.
func (c *Controller) rsOwner(obj api.Object) []framework.Key {
	m := obj.GetObjectMeta()
	if ref := api.ControllerOf(obj); ref != nil {
		if ref.Kind != deploymentKind.Name {
			return nil
		}
		return []framework.Key{{Namespace: m.Namespace, Name: ref.Name}}
	}
	var out []framework.Key
	for _, o := range c.deps.List(m.Namespace, nil) {
		d := o.(*api.Deployment)
		if sel, err := d.Spec.Selector.Selector(); err == nil && sel.Matches(labels.Set(m.Labels)) {
			out = append(out, framework.KeyOf(d))
		}
	}
	return out
}

// rsState is one ReplicaSet of a Deployment with its pods as cached.
type rsState struct {
	rs        *api.ReplicaSet
	active    int32 // pods not being deleted
	available int32 // pods available (Ready for minReadySeconds)
	ready     int32
}

func (s *rsState) replicas() int32 { return *s.rs.Spec.Replicas }

// surgeCount is what the ReplicaSet counts toward the pod total: its
// replicas or its active pods, whichever is more.
func (s *rsState) surgeCount() int32 { return max(s.replicas(), s.active) }

// availCount is what it counts toward availability: its available pods,
// but no more than its replicas (its controller deletes not-ready pods
// first, so the ones kept are the available ones).
func (s *rsState) availCount() int32 { return min(s.replicas(), s.available) }

// Reconcile rolls Deployment key toward its template and writes its
// status. A Deployment that is gone needs nothing (the garbage collector
// deletes its ReplicaSets).
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.deps.Get(key.Namespace, key.Name)
	if !ok {
		return framework.Result{}, nil
	}
	d := obj.(*api.Deployment)
	if d.DeletionTimestamp != nil {
		return framework.Result{}, nil
	}
	if d.Spec.Replicas == nil || d.Spec.RevisionHistoryLimit == nil || d.Spec.ProgressDeadlineSeconds == nil ||
		(d.Spec.Strategy.Type != api.RecreateDeploymentStrategyType && d.Spec.Strategy.RollingUpdate == nil) {
		// Written without defaults (not through the API): default a copy.
		d = api.DeepCopy(d)
		api.Default(d)
	}
	sel, err := d.Spec.Selector.Selector()
	if err != nil {
		return framework.Result{}, framework.Terminal(fmt.Errorf("deployment %s: selector: %w", key, err))
	}
	all, err := c.claimReplicaSets(ctx, d, sel)
	if err != nil {
		return framework.Result{}, err
	}
	now := c.cfg.Now()
	states := make([]*rsState, len(all))
	for i, rs := range all {
		if rs.Spec.Replicas == nil {
			rs = api.DeepCopy(rs)
			api.Default(rs)
		}
		states[i] = c.stateOf(rs, d.Spec.MinReadySeconds, now)
	}
	newRS, olds := splitNew(d, states)
	created := false
	if newRS == nil && !d.Spec.Paused {
		rs, err := c.createNewRS(ctx, d, olds)
		if err != nil {
			return framework.Result{}, err
		}
		if rs == nil {
			return framework.Result{Requeue: true}, nil // collision: hash again
		}
		newRS, created = &rsState{rs: rs}, true
	}
	if newRS != nil && !created {
		if err := c.bumpRevision(ctx, d, newRS, olds); err != nil {
			return framework.Result{}, err
		}
	}
	var rollErr error
	if !d.Spec.Paused && newRS != nil {
		if d.Spec.Strategy.Type == api.RecreateDeploymentStrategyType {
			rollErr = c.recreate(ctx, d, newRS, olds)
		} else {
			rollErr = c.rolling(ctx, d, newRS, olds)
		}
	} else if d.Spec.Paused && newRS != nil && len(activeOlds(olds)) == 0 && newRS.replicas() != *d.Spec.Replicas {
		// A paused Deployment still scales.
		rollErr = c.scale(ctx, d, newRS, *d.Spec.Replicas)
	}
	if rollErr == nil {
		rollErr = c.cleanup(ctx, d, olds)
	}
	after, err := c.updateStatus(ctx, d, newRS, olds, created, now)
	if err := errors.Join(rollErr, err); err != nil {
		return framework.Result{}, err
	}
	return framework.Result{RequeueAfter: after}, nil
}

// claimReplicaSets returns the ReplicaSets d controls, after adopting the
// orphans its selector matches.
func (c *Controller) claimReplicaSets(ctx context.Context, d *api.Deployment, sel labels.Selector) ([]*api.ReplicaSet, error) {
	var out []*api.ReplicaSet
	for _, o := range c.rsets.List(d.Namespace, nil) {
		rs := o.(*api.ReplicaSet)
		ref := api.ControllerOf(rs)
		switch {
		case ref != nil && ref.UID == d.UID:
			out = append(out, rs)
		case ref == nil && rs.DeletionTimestamp == nil && sel.Matches(labels.Set(rs.Labels)):
			cp := api.DeepCopy(rs)
			cp.OwnerReferences = append(cp.OwnerReferences, api.NewControllerRef(d))
			if err := c.st.Update(ctx, cp); err != nil {
				if api.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("deployment %s/%s: adopt replicaset %s: %w", d.Namespace, d.Name, rs.Name, err)
			}
			out = append(out, cp)
		}
	}
	return out, nil
}

func (c *Controller) stateOf(rs *api.ReplicaSet, minReady int32, now time.Time) *rsState {
	s := &rsState{rs: rs}
	for _, o := range c.pods.List(rs.Namespace, nil) {
		p := o.(*api.Pod)
		if !api.IsControlledBy(p, rs) || !replicaset.IsPodActive(p) {
			continue
		}
		s.active++
		if replicaset.IsPodReady(p) {
			s.ready++
		}
		if ok, _ := replicaset.IsPodAvailable(p, minReady, now); ok {
			s.available++
		}
	}
	return s
}

// splitNew finds the ReplicaSet whose template is the Deployment's.
func splitNew(d *api.Deployment, states []*rsState) (*rsState, []*rsState) {
	var newRS *rsState
	var olds []*rsState
	for _, s := range states {
		if newRS == nil && EqualIgnoreHash(&s.rs.Spec.Template, &d.Spec.Template) {
			newRS = s
			continue
		}
		olds = append(olds, s)
	}
	// Oldest revision first (scaled down first).
	slices.SortFunc(olds, func(a, b *rsState) int {
		if ra, rb := Revision(a.rs), Revision(b.rs); ra != rb {
			return int(ra - rb)
		}
		return a.rs.CreationTimestamp.Compare(b.rs.CreationTimestamp)
	})
	return newRS, olds
}

func activeOlds(olds []*rsState) []*rsState {
	var out []*rsState
	for _, s := range olds {
		if s.replicas() > 0 || s.active > 0 {
			out = append(out, s)
		}
	}
	return out
}

// EqualIgnoreHash reports whether two pod templates are equal apart from
// the pod-template-hash label.
func EqualIgnoreHash(a, b *api.PodTemplateSpec) bool {
	return templateJSON(a) == templateJSON(b)
}

func templateJSON(t *api.PodTemplateSpec) string {
	cp := api.DeepCopy(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Template: *t}}).Spec.Template
	delete(cp.Labels, api.LabelPodTemplateHash)
	if len(cp.Labels) == 0 {
		cp.Labels = nil
	}
	b, _ := json.Marshal(cp)
	return string(b)
}

const hashChars = "bcdfghjklmnpqrstvwxz2456789"

// TemplateHash is the pod-template-hash of a template (and the collision
// count, which changes it when two templates hash alike).
func TemplateHash(t *api.PodTemplateSpec, collisions int32) string {
	h := fnv.New32a()
	h.Write([]byte(templateJSON(t)))
	if collisions > 0 {
		h.Write([]byte(strconv.Itoa(int(collisions))))
	}
	digits := strconv.FormatUint(uint64(h.Sum32()), 10)
	out := make([]byte, len(digits))
	for i := range digits {
		out[i] = hashChars[int(digits[i]-'0')]
	}
	return string(out)
}

// Revision returns a ReplicaSet's (or Deployment's) revision annotation;
// 0 when it has none.
func Revision(obj api.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetObjectMeta().Annotations[api.AnnotationRevision], 10, 64)
	return n
}

func maxRevision(olds []*rsState) int64 {
	var m int64
	for _, s := range olds {
		m = max(m, Revision(s.rs))
	}
	return m
}

// createNewRS creates the ReplicaSet of d's current template with the next
// revision; nil (and no error) on a hash collision, after counting it.
func (c *Controller) createNewRS(ctx context.Context, d *api.Deployment, olds []*rsState) (*api.ReplicaSet, error) {
	var collisions int32
	if d.Status.CollisionCount != nil {
		collisions = *d.Status.CollisionCount
	}
	hash := TemplateHash(&d.Spec.Template, collisions)
	tmpl := api.DeepCopy(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Template: d.Spec.Template}}).Spec.Template
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[api.LabelPodTemplateHash] = hash
	sel := api.DeepCopy(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Selector: d.Spec.Selector}}).Spec.Selector
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[api.LabelPodTemplateHash] = hash
	rsLabels := map[string]string{}
	for k, v := range tmpl.Labels {
		rsLabels[k] = v
	}
	var replicas int32
	if d.Spec.Strategy.Type != api.RecreateDeploymentStrategyType {
		replicas = newRSReplicas(d, olds, 0)
	}
	maxSurge, _ := surgeAndUnavailable(d)
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{
			Name:      d.Name + "-" + hash,
			Namespace: d.Namespace,
			Labels:    rsLabels,
			Annotations: map[string]string{
				api.AnnotationRevision:        strconv.FormatInt(maxRevision(olds)+1, 10),
				api.AnnotationDesiredReplicas: strconv.Itoa(int(*d.Spec.Replicas)),
				api.AnnotationMaxReplicas:     strconv.Itoa(int(*d.Spec.Replicas + maxSurge)),
			},
			OwnerReferences: []api.OwnerReference{api.NewControllerRef(d)},
		},
		Spec: api.ReplicaSetSpec{Replicas: &replicas, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: tmpl},
	}
	if cause := d.Annotations[api.AnnotationChangeCause]; cause != "" {
		rs.Annotations[api.AnnotationChangeCause] = cause
	}
	api.Default(rs)
	err := c.st.Create(ctx, rs)
	if api.IsAlreadyExists(err) {
		cur, gerr := c.st.Get(ctx, replicaSetKind, d.Namespace, rs.Name)
		if gerr != nil {
			return nil, fmt.Errorf("deployment %s/%s: read replicaset %s: %w", d.Namespace, d.Name, rs.Name, gerr)
		}
		ex := cur.(*api.ReplicaSet)
		if api.IsControlledBy(ex, d) && EqualIgnoreHash(&ex.Spec.Template, &d.Spec.Template) {
			return ex, nil // ours, not yet in the cache
		}
		// Another template (or owner) has the name: count a collision.
		err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
			obj, err := c.st.Get(ctx, deploymentKind, d.Namespace, d.Name)
			if err != nil {
				return err
			}
			cd := obj.(*api.Deployment)
			n := collisions + 1
			cd.Status.CollisionCount = &n
			return c.st.Update(ctx, cd)
		})
		if err != nil {
			return nil, fmt.Errorf("deployment %s/%s: count hash collision: %w", d.Namespace, d.Name, err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: create replicaset: %w", d.Namespace, d.Name, err)
	}
	c.cfg.Recorder.Eventf(api.RefTo(d), api.EventTypeNormal, ReasonScalingReplicaSet, "Scaled up replica set %s from 0 to %d", rs.Name, replicas)
	return rs, nil
}

// bumpRevision gives the new ReplicaSet the highest revision when an old
// one has a higher one (a rollback made it current again), keeping its
// earlier revisions in the revision-history annotation.
func (c *Controller) bumpRevision(ctx context.Context, d *api.Deployment, newRS *rsState, olds []*rsState) error {
	m := maxRevision(olds)
	cur := Revision(newRS.rs)
	if cur > m && cur != 0 {
		return nil
	}
	rs := api.DeepCopy(newRS.rs)
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	if cur != 0 {
		h := rs.Annotations[api.AnnotationRevisionHistory]
		if h != "" {
			h += ","
		}
		rs.Annotations[api.AnnotationRevisionHistory] = h + strconv.FormatInt(cur, 10)
	}
	rs.Annotations[api.AnnotationRevision] = strconv.FormatInt(m+1, 10)
	if err := c.st.Update(ctx, rs); err != nil {
		return fmt.Errorf("deployment %s/%s: set revision of replicaset %s: %w", d.Namespace, d.Name, rs.Name, err)
	}
	newRS.rs = rs
	return nil
}

// surgeAndUnavailable resolves maxSurge (rounded up) and maxUnavailable
// (rounded down) against replicas; both 0 becomes maxUnavailable 1, as
// Kubernetes does, so a rollout can always move.
func surgeAndUnavailable(d *api.Deployment) (int32, int32) {
	replicas := *d.Spec.Replicas
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type == api.RecreateDeploymentStrategyType || ru == nil {
		return 0, 0
	}
	surge, _ := api.ScaledValue(ru.MaxSurge, replicas, true)
	unavail, _ := api.ScaledValue(ru.MaxUnavailable, replicas, false)
	unavail = min(unavail, replicas)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	return surge, unavail
}

// newRSReplicas is how many replicas the new ReplicaSet may have now under
// RollingUpdate: up to replicas, while every ReplicaSet's pods number at
// most replicas + maxSurge.
func newRSReplicas(d *api.Deployment, olds []*rsState, newCount int32) int32 {
	replicas := *d.Spec.Replicas
	surge, _ := surgeAndUnavailable(d)
	total := newCount
	for _, s := range olds {
		total += s.surgeCount()
	}
	room := replicas + surge - total
	if room <= 0 {
		return min(newCount, replicas)
	}
	return min(newCount+room, replicas)
}

// rolling does one step of a rolling update.
func (c *Controller) rolling(ctx context.Context, d *api.Deployment, newRS *rsState, olds []*rsState) error {
	replicas := *d.Spec.Replicas
	// Scale the new ReplicaSet up within the surge (or down to replicas).
	want := newRSReplicas(d, olds, newRS.surgeCount())
	if newRS.replicas() > replicas {
		want = replicas
	} else {
		want = max(want, newRS.replicas())
	}
	if want != newRS.replicas() {
		return c.scale(ctx, d, newRS, want)
	}
	// Scale old ReplicaSets down while enough pods stay available.
	_, maxUnavail := surgeAndUnavailable(d)
	minAvailable := replicas - maxUnavail
	available := newRS.availCount()
	total := newRS.surgeCount()
	for _, s := range olds {
		available += s.availCount()
		total += s.surgeCount()
	}
	// First the old pods that are not available: removing them costs
	// nothing (as long as the total stays above what must be available).
	budget := total - minAvailable - (newRS.replicas() - newRS.availCount())
	if budget <= 0 {
		return nil
	}
	var errs []error
	for _, s := range olds {
		if budget <= 0 {
			break
		}
		unhealthy := s.replicas() - s.availCount()
		if unhealthy <= 0 {
			continue
		}
		n := min(unhealthy, budget)
		if err := c.scale(ctx, d, s, s.replicas()-n); err != nil {
			errs = append(errs, err)
			continue
		}
		budget -= n
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Then available old pods, as far as availability allows.
	down := available - minAvailable
	for _, s := range olds {
		if down <= 0 {
			break
		}
		if s.replicas() == 0 {
			continue
		}
		n := min(s.replicas(), down)
		if err := c.scale(ctx, d, s, s.replicas()-n); err != nil {
			return err
		}
		down -= n
	}
	return nil
}

// recreate scales every old ReplicaSet to 0 and, once no old pod is left,
// the new one to replicas.
func (c *Controller) recreate(ctx context.Context, d *api.Deployment, newRS *rsState, olds []*rsState) error {
	waiting := false
	for _, s := range olds {
		if s.replicas() > 0 {
			if err := c.scale(ctx, d, s, 0); err != nil {
				return err
			}
			waiting = true
		}
		if s.active > 0 {
			waiting = true
		}
	}
	if waiting {
		return nil
	}
	if newRS.replicas() != *d.Spec.Replicas {
		return c.scale(ctx, d, newRS, *d.Spec.Replicas)
	}
	return nil
}

// scale sets a ReplicaSet's replicas with compare-and-set on the cached
// revision: a stale cache fails (Conflict) and the Deployment is
// reconciled again from fresh state.
func (c *Controller) scale(ctx context.Context, d *api.Deployment, s *rsState, n int32) error {
	from := s.replicas()
	rs := api.DeepCopy(s.rs)
	rs.Spec.Replicas = &n
	surge, _ := surgeAndUnavailable(d)
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	rs.Annotations[api.AnnotationDesiredReplicas] = strconv.Itoa(int(*d.Spec.Replicas))
	rs.Annotations[api.AnnotationMaxReplicas] = strconv.Itoa(int(*d.Spec.Replicas + surge))
	if err := c.st.Update(ctx, rs); err != nil {
		return fmt.Errorf("deployment %s/%s: scale replicaset %s to %d: %w", d.Namespace, d.Name, rs.Name, n, err)
	}
	s.rs = rs
	dir := "up"
	if n < from {
		dir = "down"
	}
	c.cfg.Recorder.Eventf(api.RefTo(d), api.EventTypeNormal, ReasonScalingReplicaSet, "Scaled %s replica set %s from %d to %d", dir, rs.Name, from, n)
	return nil
}

// cleanup deletes the oldest old ReplicaSets with no replicas and no pods
// beyond revisionHistoryLimit.
func (c *Controller) cleanup(ctx context.Context, d *api.Deployment, olds []*rsState) error {
	limit := int(api.DefaultRevisionHistoryLimit)
	if d.Spec.RevisionHistoryLimit != nil {
		limit = int(*d.Spec.RevisionHistoryLimit)
	}
	var idle []*rsState
	for _, s := range olds {
		if s.replicas() == 0 && s.active == 0 && s.rs.Status.Replicas == 0 && s.rs.DeletionTimestamp == nil {
			idle = append(idle, s)
		}
	}
	for i := 0; i < len(idle)-limit; i++ {
		rs := idle[i].rs
		if _, err := c.st.Delete(ctx, replicaSetKind, rs.Namespace, rs.Name, rs.ResourceVersion); err != nil && !api.IsNotFound(err) {
			return fmt.Errorf("deployment %s/%s: delete old replicaset %s: %w", d.Namespace, d.Name, rs.Name, err)
		}
	}
	return nil
}

// updateStatus writes d's status (and revision annotation) and returns
// when to look again for the progress deadline (0: no need).
func (c *Controller) updateStatus(ctx context.Context, d *api.Deployment, newRS *rsState, olds []*rsState, created bool, now time.Time) (time.Duration, error) {
	replicas := *d.Spec.Replicas
	st := api.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount,
		Conditions: slices.Clone(d.Status.Conditions)}
	all := slices.Clone(olds)
	if newRS != nil {
		all = append(all, newRS)
		st.UpdatedReplicas = newRS.active
	}
	for _, s := range all {
		st.Replicas += s.active
		st.ReadyReplicas += s.ready
		st.AvailableReplicas += s.available
	}
	st.UnavailableReplicas = max(replicas-st.AvailableReplicas, 0)
	_, maxUnavail := surgeAndUnavailable(d)
	nowT := now.UTC().Truncate(time.Second)
	if st.AvailableReplicas >= replicas-maxUnavail {
		setCond(&st, api.DeploymentAvailable, api.ConditionTrue, api.ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", nowT)
	} else {
		setCond(&st, api.DeploymentAvailable, api.ConditionFalse, api.ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", nowT)
	}
	complete := newRS != nil && st.UpdatedReplicas == replicas && st.Replicas == replicas &&
		st.AvailableReplicas == replicas && newRS.replicas() == replicas
	var after time.Duration
	deadline := time.Duration(api.DefaultProgressDeadlineSeconds) * time.Second
	if d.Spec.ProgressDeadlineSeconds != nil {
		deadline = time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	}
	rsName := ""
	if newRS != nil {
		rsName = newRS.rs.Name
	}
	prog := st.Condition(api.DeploymentProgressing)
	moved := d.Status.UpdatedReplicas != st.UpdatedReplicas || d.Status.AvailableReplicas != st.AvailableReplicas ||
		d.Status.ReadyReplicas != st.ReadyReplicas || d.Status.Replicas != st.Replicas || d.Status.ObservedGeneration != st.ObservedGeneration
	switch {
	case d.Spec.Paused:
		setCond(&st, api.DeploymentProgressing, api.ConditionUnknown, api.ReasonDeploymentPaused, "Deployment is paused", nowT)
	case complete:
		setCond(&st, api.DeploymentProgressing, api.ConditionTrue, api.ReasonNewRSAvailable,
			fmt.Sprintf("ReplicaSet %q has successfully progressed.", rsName), nowT)
	case created:
		setCond(&st, api.DeploymentProgressing, api.ConditionTrue, api.ReasonNewReplicaSetCreated,
			fmt.Sprintf("Created new replica set %q", rsName), nowT)
	case prog == nil || prog.Reason == api.ReasonDeploymentPaused || moved:
		setCond(&st, api.DeploymentProgressing, api.ConditionTrue, api.ReasonReplicaSetUpdated,
			fmt.Sprintf("ReplicaSet %q is progressing.", rsName), nowT)
		after = deadline
	case prog.Reason == api.ReasonProgressDeadlineExceeded:
	default:
		if left := prog.LastUpdateTime.Add(deadline).Sub(now); left > 0 {
			after = left
		} else {
			setCond(&st, api.DeploymentProgressing, api.ConditionFalse, api.ReasonProgressDeadlineExceeded,
				fmt.Sprintf("ReplicaSet %q has timed out progressing.", rsName), nowT)
		}
	}
	if after > 0 {
		after += time.Second / 2 // past the whole second the condition was stamped at
	}
	rev := ""
	if newRS != nil {
		rev = newRS.rs.Annotations[api.AnnotationRevision]
	}
	if jsonEq(d.Status, st) && (rev == "" || d.Annotations[api.AnnotationRevision] == rev) {
		return after, nil
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, deploymentKind, d.Namespace, d.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Deployment)
		if cur.UID != d.UID {
			return nil
		}
		cur.Status = st
		if rev != "" {
			if cur.Annotations == nil {
				cur.Annotations = map[string]string{}
			}
			cur.Annotations[api.AnnotationRevision] = rev
		}
		return c.st.Update(ctx, cur)
	})
	if err != nil && !api.IsNotFound(err) {
		return after, fmt.Errorf("deployment %s/%s: update status: %w", d.Namespace, d.Name, err)
	}
	return after, nil
}

// setCond sets a condition; its LastUpdateTime moves only when status,
// reason or message change (so the progress deadline counts from the last
// change), its LastTransitionTime only when status changes.
func setCond(st *api.DeploymentStatus, typ string, status api.ConditionStatus, reason, msg string, now time.Time) {
	c := api.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
	if old := st.Condition(typ); old != nil && old.Status == status && old.Reason == reason && old.Message == msg {
		c.LastUpdateTime = old.LastUpdateTime
		if reason == api.ReasonReplicaSetUpdated {
			c.LastUpdateTime = now
		}
	}
	st.SetCondition(c)
}

func jsonEq(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Describe returns a one-line rollout state of d, as `kubectl rollout
// status` prints it, and whether the rollout is complete.
func Describe(d *api.Deployment) (string, bool, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	if c := d.Status.Condition(api.DeploymentProgressing); c != nil && c.Reason == api.ReasonProgressDeadlineExceeded {
		return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	replicas := *d.Spec.Replicas
	s := d.Status
	switch {
	case s.UpdatedReplicas < replicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, s.UpdatedReplicas, replicas), false, nil
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, s.Replicas-s.UpdatedReplicas), false, nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, s.AvailableReplicas, s.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
}
