package statefulset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var (
	podKind      = api.KindOf(&api.Pod{})
	pvcKind      = api.KindOf(&api.PersistentVolumeClaim{})
	setKind      = api.KindOf(&api.StatefulSet{})
	revisionKind = api.KindOf(&api.ControllerRevision{})
)

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many StatefulSets are reconciled at once; default 2.
	Workers int
	// DefaultGracePeriod is the grace period of a deleted pod that names
	// none; default 30s.
	DefaultGracePeriod time.Duration
	// Recorder records the controller's events; default none.
	Recorder record.EventRecorder
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Controller reconciles StatefulSets. Create it with New and add it to its
// Manager. Safe for concurrent use.
type Controller struct {
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	sets  framework.Lister
	pods  framework.Lister
	pvcs  framework.Lister
	revs  framework.Lister
	nss   framework.Lister
	ctl   *framework.Controller
	exist replicaset.NodeExists
}

// New returns a StatefulSet controller over st, reading from mgr's shared
// informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.DefaultGracePeriod <= 0 {
		cfg.DefaultGracePeriod = 30 * time.Second
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
	log = log.With("controller", "statefulset")
	setInf, podInf, pvcInf, revInf := mgr.Informer(setKind), mgr.Informer(podKind), mgr.Informer(pvcKind), mgr.Informer(revisionKind)
	c := &Controller{st: st, cfg: cfg, log: log, sets: setInf.Lister(), pods: podInf.Lister(), pvcs: pvcInf.Lister(), revs: revInf.Lister(),
		nss: mgr.Informer(api.KindOf(&api.Namespace{})).Lister(), exist: replicaset.StoreNodeExists(st)}
	c.ctl = framework.NewController("statefulset", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(setInf, nil)
	// A pod queues its controlling set; an orphan, every set of its
	// namespace (one may adopt it).
	c.ctl.Watch(podInf, func(obj api.Object) []framework.Key {
		if keys := framework.OwnerKey(setKind.Name)(obj); keys != nil {
			return keys
		}
		if api.ControllerOf(obj) != nil {
			return nil
		}
		var keys []framework.Key
		for _, o := range c.sets.List(obj.GetObjectMeta().Namespace, nil) {
			keys = append(keys, framework.KeyOf(o))
		}
		return keys
	})
	c.ctl.Watch(revInf, framework.OwnerKey(setKind.Name))
	// A claim (deleted by hand, say) queues the sets of its namespace.
	c.ctl.Watch(pvcInf, func(obj api.Object) []framework.Key {
		var keys []framework.Key
		for _, o := range c.sets.List(obj.GetObjectMeta().Namespace, nil) {
			if len(o.(*api.StatefulSet).Spec.VolumeClaimTemplates) > 0 {
				keys = append(keys, framework.KeyOf(o))
			}
		}
		return keys
	})
	return c
}

// Run reconciles until ctx ends and returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// Revision returns the revision of a set's pod template: a hash of it,
// the value of the pods' controller-revision-hash label.
func Revision(s *api.StatefulSet) string {
	b, _ := json.Marshal(s.Spec.Template)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return s.Name + "-" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

// ordinalOf returns the ordinal of a pod of set s from its name, or -1.
func ordinalOf(s *api.StatefulSet, p *api.Pod) int32 {
	rest, ok := strings.CutPrefix(p.Name, s.Name+"-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(rest, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != rest {
		return -1
	}
	return int32(n)
}

func runningAndReady(p *api.Pod) bool {
	return p.Status.Phase == api.PodRunning && replicaset.IsPodReady(p) && p.DeletionTimestamp == nil
}

// Reconcile brings the set key to its spec and writes its status.
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.sets.Get(key.Namespace, key.Name)
	if !ok {
		return framework.Result{}, nil // the garbage collector takes its pods
	}
	set := obj.(*api.StatefulSet)
	if set.Spec.Replicas == nil || set.Spec.PodManagementPolicy == "" {
		set = api.DeepCopy(set)
		api.Default(set)
	}
	sel, err := set.Spec.Selector.Selector()
	if err != nil {
		return framework.Result{}, framework.Terminal(fmt.Errorf("statefulset %s: selector: %w", key, err))
	}
	owned, err := framework.ClaimPods(ctx, c.st, c.pods, set, sel)
	if err != nil {
		return framework.Result{}, err
	}
	var syncErr error
	if set.DeletionTimestamp == nil {
		var current *api.PodTemplateSpec
		if current, syncErr = c.syncRevisions(ctx, set, owned); syncErr == nil {
			syncErr = c.sync(ctx, set, owned, current)
		}
	}
	after, err := c.updateStatus(ctx, set, owned)
	if err := errors.Join(syncErr, err); err != nil {
		return framework.Result{}, err
	}
	return framework.Result{RequeueAfter: after}, nil
}

// sync creates, replaces and deletes pods (and makes claims) toward spec.
// current is the template of the set's current revision while a rolling
// update is under way (nil otherwise): a pod below the partition that is
// made again gets it, as in Kubernetes.
func (c *Controller) sync(ctx context.Context, set *api.StatefulSet, owned []*api.Pod, current *api.PodTemplateSpec) error {
	start, replicas := set.StartOrdinal(), *set.Spec.Replicas
	end := start + replicas
	ordered := set.Spec.PodManagementPolicy != api.ParallelPodManagement
	update := Revision(set)
	byOrdinal := map[int32]*api.Pod{}
	var condemned []*api.Pod
	for _, p := range owned {
		n := ordinalOf(set, p)
		switch {
		case n >= start && n < end:
			byOrdinal[n] = p
		default:
			condemned = append(condemned, p) // out of range, or not a name of ours
		}
	}
	// Make the pods of the range, lowest first.
	allReady := true
	for n := start; n < end; n++ {
		p := byOrdinal[n]
		switch {
		case p == nil:
			tmpl, rev := &set.Spec.Template, update
			if current != nil && set.Spec.UpdateStrategy.Type == api.RollingUpdateStatefulSetStrategyType && n < start+set.Partition() {
				tmpl, rev = current, set.Status.CurrentRevision
			}
			if err := c.createPod(ctx, set, n, tmpl, rev); err != nil {
				return err
			}
			allReady = false
			if ordered {
				return nil // the next one after this one is Running and Ready
			}
			continue
		case p.DeletionTimestamp != nil:
			allReady = false
			if ordered {
				return nil // wait for it to go; it is made again then
			}
			continue
		case p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded:
			// As Kubernetes: a pod that ended is deleted and made again.
			if err := c.deletePod(ctx, set, p); err != nil {
				return err
			}
			allReady = false
			if ordered {
				return nil
			}
			continue
		}
		if !runningAndReady(p) {
			allReady = false
			if ordered {
				return nil
			}
		}
	}
	// Scale down: highest ordinal first; ordered, one at a time and only
	// while the rest are Running and Ready.
	slices.SortFunc(condemned, func(a, b *api.Pod) int { return int(ordinalOf(set, b)) - int(ordinalOf(set, a)) })
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if ordered {
				return nil
			}
			continue
		}
		if ordered && !allReady {
			return nil
		}
		if err := c.deletePod(ctx, set, p); err != nil {
			return err
		}
		if ordered {
			return nil
		}
	}
	if len(condemned) == 0 && set.RetentionWhenScaled() == api.DeletePVCRetentionPolicy {
		if err := c.deleteScaledClaims(ctx, set); err != nil {
			return err
		}
	}
	// Rolling update: once all are Running and Ready, the highest old one
	// not below the partition goes.
	if set.Spec.UpdateStrategy.Type != api.RollingUpdateStatefulSetStrategyType || !allReady || len(condemned) > 0 {
		return nil
	}
	for n := end - 1; n >= max(start, set.Partition()); n-- {
		if p := byOrdinal[n]; p != nil && p.Labels[api.LabelControllerRevisionHash] != update {
			return c.deletePod(ctx, set, p)
		}
	}
	return nil
}

// newPod returns the pod of ordinal n of set, of template tmpl (the set's
// own, or its current revision's), of revision rev.
func newPod(set *api.StatefulSet, n int32, tmpl *api.PodTemplateSpec, rev string) *api.Pod {
	t := api.DeepCopy(&api.StatefulSet{Spec: api.StatefulSetSpec{Template: *tmpl}}).Spec.Template
	name := set.PodName(n)
	lbls := maps.Clone(t.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[api.LabelStatefulSetPodName] = name
	lbls[api.LabelPodIndex] = strconv.Itoa(int(n))
	lbls[api.LabelControllerRevisionHash] = rev
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: set.Namespace, Labels: lbls, Annotations: t.Annotations,
			OwnerReferences: []api.OwnerReference{api.NewControllerRef(set)}},
		Spec: t.Spec,
	}
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for _, ct := range set.Spec.VolumeClaimTemplates {
		pod.Spec.Volumes = slices.DeleteFunc(pod.Spec.Volumes, func(v api.Volume) bool { return v.Name == ct.Name })
		pod.Spec.Volumes = append(pod.Spec.Volumes, api.Volume{Name: ct.Name,
			PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: set.ClaimName(ct.Name, n)}})
	}
	api.Default(pod)
	return pod
}

// createPod makes the claims of ordinal n, then its pod.
func (c *Controller) createPod(ctx context.Context, set *api.StatefulSet, n int32, tmpl *api.PodTemplateSpec, rev string) error {
	if err := c.createClaims(ctx, set, n); err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(set), api.EventTypeWarning, framework.ReasonFailedCreate, "create Claim for Pod %s: %v", set.PodName(n), err)
		return fmt.Errorf("statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	pod := newPod(set, n, tmpl, rev)
	err := replicaset.AdmitPod(ctx, c.st, c.nss, pod)
	if err == nil {
		err = c.st.Create(ctx, pod)
	}
	if api.IsAlreadyExists(err) {
		return nil // the cache lags; its event comes
	}
	if err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(set), api.EventTypeWarning, framework.ReasonFailedCreate, "create Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return fmt.Errorf("statefulset %s/%s: create pod %s: %w", set.Namespace, set.Name, pod.Name, err)
	}
	c.cfg.Recorder.Eventf(api.RefTo(set), api.EventTypeNormal, framework.ReasonSuccessfulCreate, "create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return nil
}

// createClaims makes the claims of ordinal n that do not exist.
func (c *Controller) createClaims(ctx context.Context, set *api.StatefulSet, n int32) error {
	for _, ct := range set.Spec.VolumeClaimTemplates {
		name := set.ClaimName(ct.Name, n)
		if o, ok := c.pvcs.Get(set.Namespace, name); ok && o.GetObjectMeta().DeletionTimestamp == nil {
			continue
		}
		pvc := api.DeepCopy(&ct)
		pvc.ObjectMeta = api.ObjectMeta{Name: name, Namespace: set.Namespace, Labels: maps.Clone(ct.Labels), Annotations: maps.Clone(ct.Annotations)}
		if set.Spec.Selector != nil {
			if pvc.Labels == nil {
				pvc.Labels = map[string]string{}
			}
			maps.Copy(pvc.Labels, set.Spec.Selector.MatchLabels)
		}
		if set.RetentionWhenDeleted() == api.DeletePVCRetentionPolicy {
			ref := api.NewControllerRef(set)
			ref.Controller = nil // owned, not controlled: the collector takes it with the set
			pvc.OwnerReferences = []api.OwnerReference{ref}
		}
		pvc.Status = api.PersistentVolumeClaimStatus{}
		api.Default(pvc)
		if err := c.st.Create(ctx, pvc); err != nil && !api.IsAlreadyExists(err) {
			return fmt.Errorf("create claim %s: %w", name, err)
		}
	}
	return nil
}

func (c *Controller) deletePod(ctx context.Context, set *api.StatefulSet, p *api.Pod) error {
	if err := replicaset.DeletePod(ctx, c.st, c.exist, p.Namespace, p.Name, p.UID, c.cfg.DefaultGracePeriod); err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(set), api.EventTypeWarning, framework.ReasonFailedDelete, "delete Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
		return fmt.Errorf("statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	c.cfg.Recorder.Eventf(api.RefTo(set), api.EventTypeNormal, framework.ReasonSuccessfulDelete, "delete Pod %s in StatefulSet %s successful", p.Name, set.Name)
	return nil
}

// deleteScaledClaims deletes (whenScaled: Delete) the claims of the set's
// templates whose ordinal is out of range, once no pod of theirs is left.
func (c *Controller) deleteScaledClaims(ctx context.Context, set *api.StatefulSet) error {
	start, end := set.StartOrdinal(), set.StartOrdinal()+*set.Spec.Replicas
	for _, o := range c.pvcs.List(set.Namespace, nil) {
		pvc := o.(*api.PersistentVolumeClaim)
		for _, ct := range set.Spec.VolumeClaimTemplates {
			rest, ok := strings.CutPrefix(pvc.Name, ct.Name+"-"+set.Name+"-")
			n, err := strconv.ParseInt(rest, 10, 32)
			if !ok || err != nil || strconv.FormatInt(n, 10) != rest || (int32(n) >= start && int32(n) < end) {
				continue
			}
			if _, err := c.st.Delete(ctx, pvcKind, pvc.Namespace, pvc.Name, pvc.ResourceVersion); err != nil && !api.IsNotFound(err) && !api.IsConflict(err) {
				return fmt.Errorf("statefulset %s/%s: delete claim %s: %w", set.Namespace, set.Name, pvc.Name, err)
			}
		}
	}
	return nil
}

// updateStatus writes the set's status from its pods, and returns how long
// until a Ready pod becomes available (0: none).
func (c *Controller) updateStatus(ctx context.Context, set *api.StatefulSet, owned []*api.Pod) (time.Duration, error) {
	update := Revision(set)
	st := api.StatefulSetStatus{ObservedGeneration: set.Generation, UpdateRevision: update,
		CurrentRevision: set.Status.CurrentRevision, CollisionCount: set.Status.CollisionCount}
	if st.CurrentRevision == "" {
		st.CurrentRevision = update
	}
	now := c.cfg.Now()
	var after time.Duration
	for _, p := range owned {
		if p.DeletionTimestamp != nil {
			continue
		}
		st.Replicas++
		if replicaset.IsPodReady(p) {
			st.ReadyReplicas++
		}
		if ok, left := replicaset.IsPodAvailable(p, set.Spec.MinReadySeconds, now); ok {
			st.AvailableReplicas++
		} else if left > 0 && (after == 0 || left < after) {
			after = left
		}
		switch p.Labels[api.LabelControllerRevisionHash] {
		case st.CurrentRevision:
			st.CurrentReplicas++
		}
		if p.Labels[api.LabelControllerRevisionHash] == update {
			st.UpdatedReplicas++
		}
	}
	// The update is complete: it becomes the current revision.
	if st.UpdatedReplicas == *set.Spec.Replicas && st.ReadyReplicas == *set.Spec.Replicas && st.Replicas == *set.Spec.Replicas {
		st.CurrentRevision = update
		st.CurrentReplicas = st.UpdatedReplicas
	}
	if jsonEqual(set.Status, st) {
		return after, nil
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := c.st.Get(ctx, setKind, set.Namespace, set.Name)
		if err != nil {
			return err
		}
		cur := o.(*api.StatefulSet)
		if cur.UID != set.UID || cur.Generation != set.Generation || jsonEqual(cur.Status, st) {
			return nil
		}
		cur.Status = st
		return c.st.Update(ctx, cur)
	})
	if err != nil && !api.IsNotFound(err) {
		return after, fmt.Errorf("statefulset %s/%s: update status: %w", set.Namespace, set.Name, err)
	}
	return after, nil
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
