package job

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/admission/podsecurity"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var (
	jobKind       = api.KindOf(&api.Job{})
	podKind       = api.KindOf(&api.Pod{})
	namespaceKind = api.KindOf(&api.Namespace{})
)

// Event reasons the controller records, as Kubernetes' job controller.
const (
	ReasonCompleted = "Completed"
	ReasonSuspended = "Suspended"
	ReasonResumed   = "Resumed"
)

// Condition messages, as Kubernetes'.
const (
	MessageBackoffLimitExceeded = "Job has reached the specified backoff limit"
	MessageDeadlineExceeded     = "Job was active longer than specified deadline"
	MessageSuspended            = "Job suspended"
)

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many Jobs are reconciled at once; default 4.
	Workers int
	// BackoffBase is the wait before a Job's next pod after its first
	// failure, doubling with every further failure up to BackoffMax;
	// defaults 10s and 6m (Kubernetes').
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Recorder receives the controller's events; default none.
	Recorder record.EventRecorder
}

// Controller runs Jobs. Create it with New and Run it while its Manager
// runs (or add it to the Manager). Safe for concurrent use.
type Controller struct {
	st   *store.Store
	cfg  Config
	log  *slog.Logger
	rec  record.EventRecorder
	now  func() time.Time
	jobs framework.Lister
	pods framework.Lister
	nss  framework.Lister
	ctl  *framework.Controller
	exp  *expectations
}

// New returns a Job controller over st that reads Jobs, pods and
// namespaces from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 6 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "job")
	rec := cfg.Recorder
	if rec == nil {
		rec = record.Nop{}
	}
	jobInf, podInf, nsInf := mgr.Informer(jobKind), mgr.Informer(podKind), mgr.Informer(namespaceKind)
	c := &Controller{st: st, cfg: cfg, log: log, rec: rec, now: time.Now,
		jobs: jobInf.Lister(), pods: podInf.Lister(), nss: nsInf.Lister(), exp: newExpectations()}
	c.ctl = framework.NewController("job", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(jobInf, nil)
	c.ctl.Watch(podInf, framework.OwnerKey(jobKind.Name))
	return c
}

// Run runs Jobs until ctx ends (the Manager must run the informers); it
// returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// Reconcile brings Job key to its desired state; see the package
// documentation. A Job that is gone needs nothing (its pods are the
// garbage collector's).
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.jobs.Get(key.Namespace, key.Name)
	if !ok {
		c.exp.forget(key)
		return framework.Result{}, nil
	}
	job := api.DeepCopy(obj.(*api.Job))
	if job.DeletionTimestamp != nil {
		return framework.Result{}, nil
	}
	now := c.now()
	if fin, _ := job.Finished(); fin {
		return c.finished(ctx, job, now)
	}
	job, err := c.ensureSelector(ctx, job)
	if err != nil || job == nil {
		return framework.Result{}, err
	}
	return c.sync(ctx, key, job, now)
}

// ensureSelector gives a Job without manualSelector its generated selector
// and pod labels (once; compare-and-set). It returns the Job as stored, or
// nil when it is gone.
func (c *Controller) ensureSelector(ctx context.Context, job *api.Job) (*api.Job, error) {
	if job.Spec.Selector != nil || (job.Spec.ManualSelector != nil && *job.Spec.ManualSelector) {
		return job, nil
	}
	var out *api.Job
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, jobKind, job.Namespace, job.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Job)
		if cur.UID != job.UID {
			return nil // deleted and created again: its own key comes
		}
		out = cur
		if cur.Spec.Selector != nil {
			return nil
		}
		cur.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{api.LabelControllerUID: cur.UID}}
		if cur.Spec.Template.Labels == nil {
			cur.Spec.Template.Labels = map[string]string{}
		}
		for k, v := range jobLabels(cur) {
			cur.Spec.Template.Labels[k] = v
		}
		return c.st.Update(ctx, cur)
	})
	if api.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: generate selector: %w", job.Namespace, job.Name, err)
	}
	return out, nil
}

// jobLabels are the labels every pod of job carries.
func jobLabels(job *api.Job) map[string]string {
	return map[string]string{
		api.LabelControllerUID: job.UID, api.LabelLegacyControllerUID: job.UID,
		api.LabelJobName: job.Name, api.LabelLegacyJobName: job.Name,
	}
}

// podSet is a Job's pods by state.
type podSet struct {
	active, succeeded, failed []*api.Pod
	// expected are pods created but not yet in the cache (active).
	expected []expectedPod
}

// pods returns job's pods: those in the cache that match its selector and
// whose controlling owner is job (by uid), and those created but not yet
// cached.
func (c *Controller) podsOf(key framework.Key, job *api.Job) (podSet, error) {
	var ps podSet
	sel, err := job.Spec.Selector.Selector()
	if err != nil {
		return ps, framework.Terminal(fmt.Errorf("job %s/%s: selector: %w", job.Namespace, job.Name, err))
	}
	seen := map[string]bool{}
	for _, o := range c.pods.List(job.Namespace, sel) {
		p := o.(*api.Pod)
		if !ownedBy(p, job) {
			continue
		}
		seen[p.Name] = true
		switch {
		case p.Status.Phase == api.PodSucceeded:
			ps.succeeded = append(ps.succeeded, p)
		case p.Status.Phase == api.PodFailed:
			ps.failed = append(ps.failed, p)
		case p.DeletionTimestamp == nil:
			ps.active = append(ps.active, p)
		}
	}
	ps.expected = c.exp.pending(key, job.UID, seen, c.now())
	return ps, nil
}

// ownedBy reports whether job is p's controlling owner.
func ownedBy(p *api.Pod, job *api.Job) bool {
	for _, r := range p.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return r.Kind == jobKind.Name && r.UID == job.UID
		}
	}
	return false
}

// sync is Reconcile for a Job that is not finished.
func (c *Controller) sync(ctx context.Context, key framework.Key, job *api.Job, now time.Time) (framework.Result, error) {
	ps, err := c.podsOf(key, job)
	if err != nil {
		return framework.Result{}, err
	}
	st := job.Status
	st.Conditions = slices.Clone(st.Conditions)
	if st.StartTime == nil {
		t := now.UTC().Truncate(time.Second)
		st.StartTime = &t
	}
	indexed := job.Spec.Mode() == api.IndexedCompletion
	completions := int32(-1)
	if job.Spec.Completions != nil {
		completions = *job.Spec.Completions
	}
	// Counts never go down: a pod deleted by someone else still counted.
	st.Failed = max(st.Failed, int32(len(ps.failed)))
	var done indexSet
	if indexed {
		done = parseIndexes(st.CompletedIndexes, completions)
		for _, p := range ps.succeeded {
			if i, ok := podIndex(p); ok && i < int(completions) {
				done[i] = true
			}
		}
		st.CompletedIndexes = done.String()
		st.Succeeded = max(st.Succeeded, int32(len(done)))
	} else {
		st.Succeeded = max(st.Succeeded, int32(len(ps.succeeded)))
	}

	// Resumed: the deadline counts from now, as in Kubernetes.
	if cond := st.Condition(api.JobSuspended); !suspended(job) && cond != nil && cond.Status == api.ConditionTrue {
		t := now.UTC().Truncate(time.Second)
		cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime = api.ConditionFalse, "JobResumed", "Job resumed", t
		st.StartTime = &t
		c.rec.Eventf(api.RefTo(job), api.EventTypeNormal, ReasonResumed, "Job resumed")
	}

	// Failed: too many failures, or past the deadline.
	reason, msg := "", ""
	switch {
	case st.Failed > *job.Spec.BackoffLimit || pastBackoffLimitOnFailure(job, ps.active):
		reason, msg = api.JobReasonBackoffLimitExceeded, MessageBackoffLimitExceeded
	case !suspended(job) && job.Spec.ActiveDeadlineSeconds != nil && !now.Before(st.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second)):
		reason, msg = api.JobReasonDeadlineExceeded, MessageDeadlineExceeded
	}
	if reason != "" {
		deleted, err := c.deletePods(ctx, job, ps.active)
		st.Failed += int32(deleted)
		if err != nil {
			return framework.Result{}, err
		}
		st.Active, st.Ready = 0, ptr(int32(0))
		setCondition(&st, api.JobFailed, reason, msg, now)
		wrote, err := c.writeStatus(ctx, job, st)
		if wrote {
			c.rec.Eventf(api.RefTo(job), api.EventTypeWarning, reason, "%s", msg)
		}
		return framework.Result{}, err
	}

	// Suspended: no pods.
	if suspended(job) {
		if _, err := c.deletePods(ctx, job, ps.active); err != nil {
			return framework.Result{}, err
		}
		if cond := st.Condition(api.JobSuspended); cond == nil || cond.Status != api.ConditionTrue {
			setCondition(&st, api.JobSuspended, "JobSuspended", MessageSuspended, now)
			c.rec.Eventf(api.RefTo(job), api.EventTypeNormal, ReasonSuspended, "Job suspended")
		}
		st.Active, st.Ready = 0, ptr(int32(0))
		_, err := c.writeStatus(ctx, job, st)
		return framework.Result{}, err
	}

	// Complete?
	active := len(ps.active) + len(ps.expected)
	complete := false
	switch {
	case indexed:
		complete = int32(len(done)) >= completions
	case completions >= 0:
		complete = st.Succeeded >= completions
	default: // a work queue: one success, and the others finished
		complete = st.Succeeded > 0 && active == 0
	}
	if complete {
		if _, err := c.deletePods(ctx, job, ps.active); err != nil {
			return framework.Result{}, err
		}
		t := now.UTC().Truncate(time.Second)
		st.CompletionTime = &t
		st.Active, st.Ready = 0, ptr(int32(0))
		setCondition(&st, api.JobComplete, "", "", now)
		wrote, err := c.writeStatus(ctx, job, st)
		if wrote {
			c.rec.Eventf(api.RefTo(job), api.EventTypeNormal, ReasonCompleted, "Job completed")
		}
		return framework.Result{}, err
	}

	// Keep the wanted number of pods active.
	res := framework.Result{}
	want := c.wantActive(job, st, active)
	switch {
	case active > want:
		victims := pickExtras(ps.active, active-want, indexed)
		if _, err := c.deletePods(ctx, job, victims); err != nil {
			return framework.Result{}, err
		}
		ps.active = slices.DeleteFunc(ps.active, func(p *api.Pod) bool { return slices.Contains(victims, p) })
	case active < want:
		if wait := c.backoffLeft(ps.failed, st.Failed, now); wait > 0 {
			res.RequeueAfter = wait
			break
		}
		var indexes []int
		if indexed {
			indexes = missingIndexes(completions, done, ps, want-active)
		} else {
			for range want - active {
				indexes = append(indexes, -1)
			}
		}
		created, err := c.createPods(ctx, key, job, indexes)
		active += created
		if err != nil {
			st.Active = int32(active)
			_, _ = c.writeStatus(ctx, job, st)
			return framework.Result{}, err
		}
	}
	st.Active = int32(len(ps.active) + len(c.exp.pending(key, job.UID, namesOf(ps.active), now)))
	ready := int32(0)
	for _, p := range ps.active {
		if cond := p.Status.Condition(api.PodReady); cond != nil && cond.Status == api.ConditionTrue {
			ready++
		}
	}
	st.Ready = &ready
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil && !suspended(job) {
		left := st.StartTime.Add(time.Duration(*ads) * time.Second).Sub(now)
		if res.RequeueAfter == 0 || left < res.RequeueAfter {
			res.RequeueAfter = max(left, time.Millisecond)
		}
	}
	_, err = c.writeStatus(ctx, job, st)
	return res, err
}

// suspended reports whether spec.suspend is true.
func suspended(job *api.Job) bool { return job.Spec.Suspend != nil && *job.Spec.Suspend }

func namesOf(pods []*api.Pod) map[string]bool {
	m := make(map[string]bool, len(pods))
	for _, p := range pods {
		m[p.Name] = true
	}
	return m
}

func ptr[T any](v T) *T { return &v }

// wantActive is how many pods job should have active, as Kubernetes
// computes it: parallelism, but no more than the completions left; a work
// queue (no completions) starts no pod after one succeeded.
func (c *Controller) wantActive(job *api.Job, st api.JobStatus, active int) int {
	par := int(*job.Spec.Parallelism)
	if job.Spec.Completions == nil {
		if st.Succeeded > 0 {
			return min(active, par)
		}
		return par
	}
	return max(0, min(par, int(*job.Spec.Completions-st.Succeeded)))
}

// pastBackoffLimitOnFailure reports whether the restarts of a Job's active
// pods (restartPolicy OnFailure restarts them in place) reached its
// backoffLimit, as Kubernetes counts them.
func pastBackoffLimitOnFailure(job *api.Job, active []*api.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != api.RestartPolicyOnFailure {
		return false
	}
	n := int32(0)
	for _, p := range active {
		for _, cs := range p.Status.InitContainerStatuses {
			n += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			n += cs.RestartCount
		}
	}
	if *job.Spec.BackoffLimit == 0 {
		return n > 0
	}
	return n >= *job.Spec.BackoffLimit
}

// backoffLeft is how long a Job with failed pods waits before its next
// pod: BackoffBase doubled per failure beyond the first, up to BackoffMax,
// from the last failure.
func (c *Controller) backoffLeft(failed []*api.Pod, count int32, now time.Time) time.Duration {
	if count == 0 || len(failed) == 0 {
		return 0
	}
	delay := c.cfg.BackoffBase
	for i := int32(1); i < count && delay < c.cfg.BackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, c.cfg.BackoffMax)
	var last time.Time
	for _, p := range failed {
		if t := finishedAt(p); t.After(last) {
			last = t
		}
	}
	return last.Add(delay).Sub(now)
}

// finishedAt is when a failed pod's last container finished (its
// creation when no status says).
func finishedAt(p *api.Pod) time.Time {
	t := p.CreationTimestamp
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt
		}
	}
	return t
}

// setCondition sets condition typ True with reason and message.
func setCondition(st *api.JobStatus, typ, reason, msg string, now time.Time) {
	t := now.UTC().Truncate(time.Second)
	if cond := st.Condition(typ); cond != nil {
		if cond.Status != api.ConditionTrue {
			cond.LastTransitionTime = t
		}
		cond.Status, cond.Reason, cond.Message, cond.LastProbeTime = api.ConditionTrue, reason, msg, t
		return
	}
	st.Conditions = append(st.Conditions, api.JobCondition{Type: typ, Status: api.ConditionTrue, Reason: reason, Message: msg, LastProbeTime: t, LastTransitionTime: t})
}

// writeStatus stores st as job's status (compare-and-set on a fresh read),
// unless nothing changed, and reports whether it wrote. Counts never go
// down and a finished Job's status is never changed again.
func (c *Controller) writeStatus(ctx context.Context, job *api.Job, st api.JobStatus) (bool, error) {
	if sameJSON(job.Status, st) {
		return false, nil
	}
	wrote := false
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, jobKind, job.Namespace, job.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Job)
		if cur.UID != job.UID {
			return nil
		}
		if fin, _ := cur.Finished(); fin {
			return nil
		}
		next := st
		next.Succeeded = max(next.Succeeded, cur.Status.Succeeded)
		next.Failed = max(next.Failed, cur.Status.Failed)
		if job.Spec.Mode() == api.IndexedCompletion && job.Spec.Completions != nil {
			done := parseIndexes(cur.Status.CompletedIndexes, *job.Spec.Completions)
			for i := range parseIndexes(next.CompletedIndexes, *job.Spec.Completions) {
				done[i] = true
			}
			next.CompletedIndexes = done.String()
		}
		if sameJSON(cur.Status, next) {
			return nil
		}
		cur.Status = next
		wrote = false
		if err := c.st.Update(ctx, cur); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if err != nil && !api.IsNotFound(err) {
		return false, fmt.Errorf("job %s/%s: write status: %w", job.Namespace, job.Name, err)
	}
	return wrote && err == nil, nil
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// finished handles a Complete or Failed Job: it stops pods still running
// and, ttlSecondsAfterFinished after it finished, deletes its pods and it.
func (c *Controller) finished(ctx context.Context, job *api.Job, now time.Time) (framework.Result, error) {
	var owned, running []*api.Pod
	if job.Spec.Selector != nil {
		sel, err := job.Spec.Selector.Selector()
		if err != nil {
			return framework.Result{}, framework.Terminal(fmt.Errorf("job %s/%s: selector: %w", job.Namespace, job.Name, err))
		}
		for _, o := range c.pods.List(job.Namespace, sel) {
			p := o.(*api.Pod)
			if !ownedBy(p, job) {
				continue
			}
			owned = append(owned, p)
			if p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
	}
	if _, err := c.deletePods(ctx, job, running); err != nil {
		return framework.Result{}, err
	}
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return framework.Result{}, nil
	}
	at := finishTime(job).Add(time.Duration(*ttl) * time.Second)
	if left := at.Sub(now); left > 0 {
		return framework.Result{RequeueAfter: left}, nil
	}
	if _, err := c.deletePods(ctx, job, owned); err != nil {
		return framework.Result{}, err
	}
	_, err := c.st.Delete(ctx, jobKind, job.Namespace, job.Name, job.ResourceVersion)
	switch {
	case api.IsNotFound(err):
		return framework.Result{}, nil
	case api.IsConflict(err):
		return framework.Result{Requeue: true}, nil // changed meanwhile: look again
	case err != nil:
		return framework.Result{}, fmt.Errorf("job %s/%s: delete after ttlSecondsAfterFinished: %w", job.Namespace, job.Name, err)
	}
	c.log.Info("finished job deleted after its ttl", "job", job.Namespace+"/"+job.Name)
	return framework.Result{}, nil
}

// finishTime is when a finished Job finished: its completionTime, or the
// transition time of its Failed condition.
func finishTime(job *api.Job) time.Time {
	if job.Status.CompletionTime != nil {
		return *job.Status.CompletionTime
	}
	for _, cond := range job.Status.Conditions {
		if (cond.Type == api.JobComplete || cond.Type == api.JobFailed) && cond.Status == api.ConditionTrue {
			return cond.LastTransitionTime
		}
	}
	return job.CreationTimestamp
}

// deletePods deletes pods of job the way the apiserver does: at once when
// no agent runs them (unbound or finished), else by marking them for
// graceful deletion (the agent stops them and removes them). It returns
// how many it deleted or marked.
func (c *Controller) deletePods(ctx context.Context, job *api.Job, pods []*api.Pod) (int, error) {
	n := 0
	var errs []error
	for _, cached := range pods {
		err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
			obj, err := c.st.Get(ctx, podKind, cached.Namespace, cached.Name)
			if err != nil {
				return err
			}
			p := obj.(*api.Pod)
			if p.UID != cached.UID {
				return nil
			}
			if p.Spec.NodeName == "" || p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
				_, err := c.st.Delete(ctx, podKind, p.Namespace, p.Name, p.ResourceVersion)
				return err
			}
			if p.DeletionTimestamp != nil {
				return nil
			}
			g := api.DefaultTerminationGracePeriodSeconds
			if p.Spec.TerminationGracePeriodSeconds != nil {
				g = *p.Spec.TerminationGracePeriodSeconds
			}
			t := c.now().UTC().Truncate(time.Second)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &t, &g
			return c.st.Update(ctx, p)
		})
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("job %s/%s: delete pod %s: %w", job.Namespace, job.Name, cached.Name, err))
			continue
		}
		n++
		c.rec.Eventf(api.RefTo(job), api.EventTypeNormal, framework.ReasonSuccessfulDelete, "Deleted pod: %s", cached.Name)
	}
	return n, errors.Join(errs...)
}

// pickExtras chooses n active pods to delete: for an Indexed Job the
// second pod of an index first; then pods not yet bound, then not ready,
// then the newest.
func pickExtras(active []*api.Pod, n int, indexed bool) []*api.Pod {
	if n <= 0 {
		return nil
	}
	var out []*api.Pod
	rest := slices.Clone(active)
	if indexed {
		seen := map[int]bool{}
		rest = rest[:0]
		for _, p := range active {
			i, _ := podIndex(p)
			if seen[i] && len(out) < n {
				out = append(out, p)
				continue
			}
			seen[i] = true
			rest = append(rest, p)
		}
	}
	rank := func(p *api.Pod) int {
		switch {
		case p.Spec.NodeName == "":
			return 0
		case p.Status.Condition(api.PodReady) == nil || p.Status.Condition(api.PodReady).Status != api.ConditionTrue:
			return 1
		}
		return 2
	}
	sort.SliceStable(rest, func(a, b int) bool {
		ra, rb := rank(rest[a]), rank(rest[b])
		if ra != rb {
			return ra < rb
		}
		return rest[a].CreationTimestamp.After(rest[b].CreationTimestamp)
	})
	for _, p := range rest {
		if len(out) >= n {
			break
		}
		out = append(out, p)
	}
	return out
}

// missingIndexes returns up to n indexes below completions that neither
// succeeded nor have an active (or expected) pod, lowest first.
func missingIndexes(completions int32, done indexSet, ps podSet, n int) []int {
	busy := map[int]bool{}
	for _, p := range ps.active {
		if i, ok := podIndex(p); ok {
			busy[i] = true
		}
	}
	for _, e := range ps.expected {
		busy[e.index] = true
	}
	var out []int
	for i := 0; i < int(completions) && len(out) < n; i++ {
		if !done[i] && !busy[i] {
			out = append(out, i)
		}
	}
	return out
}

// podIndex returns a pod's completion index (its annotation).
func podIndex(p *api.Pod) (int, bool) {
	v, ok := p.Annotations[api.AnnotationJobCompletionIndex]
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// createPods creates one pod per index (-1: no index), recording each as
// expected until the cache shows it. It returns how many it created.
func (c *Controller) createPods(ctx context.Context, key framework.Key, job *api.Job, indexes []int) (int, error) {
	if len(indexes) == 0 {
		return 0, nil
	}
	level, err := c.podSecurityLevel(ctx, job.Namespace)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, idx := range indexes {
		pod := newPod(job, idx)
		if causes := podsecurity.Check(level, pod); len(causes) > 0 {
			parts := make([]string, len(causes))
			for i, cs := range causes {
				parts[i] = cs.Field + ": " + cs.Message
			}
			msg := fmt.Sprintf("Error creating: pods %q is forbidden: violates PodSecurity %q: %s", pod.Name, level, strings.Join(parts, "; "))
			c.rec.Eventf(api.RefTo(job), api.EventTypeWarning, framework.ReasonFailedCreate, "%s", msg)
			return n, fmt.Errorf("job %s/%s: %s", job.Namespace, job.Name, msg)
		}
		err := c.st.Create(ctx, pod)
		if api.IsAlreadyExists(err) { // a random suffix taken: once more
			pod = newPod(job, idx)
			err = c.st.Create(ctx, pod)
		}
		if err != nil {
			c.rec.Eventf(api.RefTo(job), api.EventTypeWarning, framework.ReasonFailedCreate, "Error creating: %v", err)
			return n, fmt.Errorf("job %s/%s: create pod: %w", job.Namespace, job.Name, err)
		}
		c.exp.expect(key, job.UID, pod.Name, idx, c.now())
		n++
		c.rec.Eventf(api.RefTo(job), api.EventTypeNormal, framework.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
	}
	return n, nil
}

// podSecurityLevel is the Pod Security level namespace ns enforces.
func (c *Controller) podSecurityLevel(ctx context.Context, ns string) (podsecurity.Level, error) {
	if obj, ok := c.nss.Get("", ns); ok {
		return podsecurity.NamespaceLevel(obj.(*api.Namespace)), nil
	}
	obj, err := c.st.Get(ctx, namespaceKind, "", ns)
	if err != nil {
		return "", fmt.Errorf("read namespace %s for its pod security level: %w", ns, err)
	}
	return podsecurity.NamespaceLevel(obj.(*api.Namespace)), nil
}

// newPod returns a new pod of job from its template; index >= 0 is its
// completion index.
func newPod(job *api.Job, index int) *api.Pod {
	t := api.DeepCopy(&api.Pod{ObjectMeta: job.Spec.Template.ObjectMeta, Spec: job.Spec.Template.Spec})
	p := &api.Pod{Spec: t.Spec}
	p.Namespace = job.Namespace
	p.Labels = t.Labels
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	for k, v := range jobLabels(job) {
		p.Labels[k] = v
	}
	p.Annotations = t.Annotations
	prefix := strings.ReplaceAll(job.Name, ".", "-") + "-"
	if index >= 0 {
		is := strconv.Itoa(index)
		prefix += is + "-"
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[api.AnnotationJobCompletionIndex] = is
		p.Labels[api.AnnotationJobCompletionIndex] = is
		for _, cs := range [][]api.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range cs {
				if !slices.ContainsFunc(cs[i].Env, func(e api.EnvVar) bool { return e.Name == api.EnvJobCompletionIndex }) {
					cs[i].Env = append(cs[i].Env, api.EnvVar{Name: api.EnvJobCompletionIndex, Value: is})
				}
			}
		}
	}
	const maxPrefix = 63 - 5 // a pod name is a DNS label
	if len(prefix) > maxPrefix {
		prefix = prefix[:maxPrefix]
	}
	p.Name = prefix + randSuffix()
	yes := true
	p.OwnerReferences = []api.OwnerReference{{APIVersion: api.BatchVersion, Kind: jobKind.Name, Name: job.Name, UID: job.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
	api.Default(p)
	return p
}

// randSuffix is 5 characters as Kubernetes' generated names use (no
// vowels, no look-alike digits).
func randSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// expectations remembers the pods each Job created that the pod cache has
// not shown yet, so they count as active meanwhile (as client-go's
// ControllerExpectations). An entry ends when the cache shows the pod, or
// after expectTimeout (the pod was deleted before the cache saw it). Safe
// for concurrent use.
type expectations struct {
	mu sync.Mutex
	m  map[framework.Key]map[string]expectedPod
}

type expectedPod struct {
	uid   string // the Job's
	index int
	at    time.Time
}

// expectTimeout bounds how long a created pod the cache never showed counts.
const expectTimeout = time.Minute

func newExpectations() *expectations {
	return &expectations{m: map[framework.Key]map[string]expectedPod{}}
}

func (e *expectations) expect(key framework.Key, uid, name string, index int, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m[key] == nil {
		e.m[key] = map[string]expectedPod{}
	}
	e.m[key][name] = expectedPod{uid: uid, index: index, at: now}
}

// pending returns the pods of Job key (uid) still expected: not in seen
// and not timed out. Others are forgotten.
func (e *expectations) pending(key framework.Key, uid string, seen map[string]bool, now time.Time) []expectedPod {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []expectedPod
	for name, p := range e.m[key] {
		if seen[name] || p.uid != uid || now.Sub(p.at) > expectTimeout {
			delete(e.m[key], name)
			continue
		}
		out = append(out, p)
	}
	if len(e.m[key]) == 0 {
		delete(e.m, key)
	}
	return out
}

func (e *expectations) forget(key framework.Key) {
	e.mu.Lock()
	delete(e.m, key)
	e.mu.Unlock()
}
