package cronjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var (
	cronJobKind = api.KindOf(&api.CronJob{})
	jobKind     = api.KindOf(&api.Job{})
	podKind     = api.KindOf(&api.Pod{})
)

// Event reasons, as Kubernetes' cronjob controller.
const (
	ReasonJobAlreadyActive = "JobAlreadyActive"
	ReasonMissSchedule     = "MissSchedule"
	ReasonUnknownSchedule  = "UnknownSchedule"
)

// maxMissed bounds the scheduled times looked at since the last run; a
// CronJob that missed more starts from the newest (and says so).
const maxMissed = 100

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many CronJobs are reconciled at once; default 2.
	Workers int
	// Recorder receives the controller's events; default none.
	Recorder record.EventRecorder
}

// Controller creates CronJobs' Jobs. Create it with New and Run it while
// its Manager runs (or add it to the Manager). Safe for concurrent use.
type Controller struct {
	st   *store.Store
	log  *slog.Logger
	rec  record.EventRecorder
	now  func() time.Time
	cjs  framework.Lister
	jobs framework.Lister
	pods framework.Lister
	ctl  *framework.Controller
}

// New returns a CronJob controller over st that reads CronJobs, Jobs and
// pods from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "cronjob")
	rec := cfg.Recorder
	if rec == nil {
		rec = record.Nop{}
	}
	cjInf, jobInf, podInf := mgr.Informer(cronJobKind), mgr.Informer(jobKind), mgr.Informer(podKind)
	c := &Controller{st: st, log: log, rec: rec, now: time.Now, cjs: cjInf.Lister(), jobs: jobInf.Lister(), pods: podInf.Lister()}
	c.ctl = framework.NewController("cronjob", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(cjInf, nil)
	c.ctl.Watch(jobInf, framework.OwnerKey(cronJobKind.Name))
	return c
}

// Run runs CronJobs until ctx ends; it returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// Reconcile brings CronJob key up to date; see the package documentation.
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.cjs.Get(key.Namespace, key.Name)
	if !ok {
		return framework.Result{}, nil
	}
	cj := api.DeepCopy(obj.(*api.CronJob))
	if cj.DeletionTimestamp != nil {
		return framework.Result{}, nil
	}
	now := c.now()
	st := cj.Status
	st.Active = nil
	var succeeded, failed []*api.Job
	var active []*api.Job
	for _, o := range c.jobs.List(cj.Namespace, nil) {
		j := o.(*api.Job)
		if !ownedBy(j, cj) {
			continue
		}
		fin, how := j.Finished()
		switch {
		case !fin:
			active = append(active, j)
			st.Active = append(st.Active, api.RefTo(j))
		case how == api.JobComplete:
			succeeded = append(succeeded, j)
			if t := j.Status.CompletionTime; t != nil && (st.LastSuccessfulTime == nil || t.After(*st.LastSuccessfulTime)) {
				st.LastSuccessfulTime = t
			}
		default:
			failed = append(failed, j)
		}
	}
	sort.Slice(st.Active, func(a, b int) bool { return st.Active[a].Name < st.Active[b].Name })
	var errs []error
	errs = append(errs, c.prune(ctx, cj, succeeded, *cj.Spec.SuccessfulJobsHistoryLimit))
	errs = append(errs, c.prune(ctx, cj, failed, *cj.Spec.FailedJobsHistoryLimit))

	sched, loc, err := cj.Spec.CronSchedule()
	if err != nil {
		c.rec.Eventf(api.RefTo(cj), api.EventTypeWarning, ReasonUnknownSchedule, "unparseable schedule %q: %v", cj.Spec.Schedule, err)
		return framework.Result{}, framework.Terminal(fmt.Errorf("cronjob %s/%s: schedule: %w", cj.Namespace, cj.Name, err))
	}
	res := framework.Result{RequeueAfter: max(sched.Next(now.In(loc)).Sub(now), time.Millisecond)}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		errs = append(errs, c.writeStatus(ctx, cj, st))
		return framework.Result{}, errors.Join(errs...)
	}
	due, missed := c.due(cj, sched, loc, now)
	if missed > maxMissed {
		c.rec.Eventf(api.RefTo(cj), api.EventTypeWarning, ReasonMissSchedule, "Missed more than %d start times; starting from the newest", maxMissed)
	}
	if due != nil {
		switch cj.Spec.ConcurrencyPolicy {
		case api.ForbidConcurrent:
			if len(active) > 0 {
				c.rec.Eventf(api.RefTo(cj), api.EventTypeNormal, ReasonJobAlreadyActive, "Not starting job because prior execution is running and concurrency policy is Forbid")
				due = nil
			}
		case api.ReplaceConcurrent:
			for _, j := range active {
				if err := c.deleteJob(ctx, cj, j); err != nil {
					return framework.Result{}, err
				}
			}
			st.Active = nil
		}
	}
	if due != nil {
		j, err := c.createJob(ctx, cj, *due)
		if err != nil {
			c.rec.Eventf(api.RefTo(cj), api.EventTypeWarning, framework.ReasonFailedCreate, "Error creating job: %v", err)
			return framework.Result{}, err
		}
		if j != nil {
			st.Active = append(st.Active, api.RefTo(j))
		}
		t := due.UTC()
		st.LastScheduleTime = &t
	}
	errs = append(errs, c.writeStatus(ctx, cj, st))
	return res, errors.Join(errs...)
}

// due returns the most recent scheduled time in (last, now] that is within
// startingDeadlineSeconds of now (nil when none), and how many scheduled
// times passed since the last run.
func (c *Controller) due(cj *api.CronJob, sched interface{ Next(time.Time) time.Time }, loc *time.Location, now time.Time) (*time.Time, int) {
	from := cj.CreationTimestamp
	if cj.Status.LastScheduleTime != nil {
		from = *cj.Status.LastScheduleTime
	}
	if sd := cj.Spec.StartingDeadlineSeconds; sd != nil {
		if earliest := now.Add(-time.Duration(*sd) * time.Second); earliest.After(from) {
			from = earliest
		}
	}
	var last *time.Time
	n := 0
	for t := sched.Next(from.In(loc)); !t.After(now); t = sched.Next(t) {
		t := t
		last = &t
		n++
		if n > maxMissed {
			// Many missed: jump to two intervals before now and take the
			// newest from there (the count says only "more than").
			interval := sched.Next(t).Sub(t)
			last = nil
			for t2 := sched.Next(now.Add(-2 * interval).In(loc)); !t2.After(now); t2 = sched.Next(t2) {
				t2 := t2
				last = &t2
			}
			break
		}
	}
	if last != nil && cj.Spec.StartingDeadlineSeconds != nil && now.Sub(*last) > time.Duration(*cj.Spec.StartingDeadlineSeconds)*time.Second {
		return nil, n
	}
	return last, n
}

func ownedBy(j *api.Job, cj *api.CronJob) bool {
	for _, r := range j.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return r.Kind == cronJobKind.Name && r.UID == cj.UID
		}
	}
	return false
}

// JobName is the name of cj's Job scheduled for t: <cronjob>-<Unix
// minutes>, as Kubernetes names them.
func JobName(cronJob string, t time.Time) string {
	return cronJob + "-" + strconv.FormatInt(t.Unix()/60, 10)
}

// createJob creates cj's Job for scheduled time t; a Job of that name that
// exists already (created before a restart) is that run: nil, nil.
func (c *Controller) createJob(ctx context.Context, cj *api.CronJob, t time.Time) (*api.Job, error) {
	tmpl := api.DeepCopy(&api.Job{ObjectMeta: cj.Spec.JobTemplate.ObjectMeta, Spec: cj.Spec.JobTemplate.Spec})
	j := &api.Job{Spec: tmpl.Spec}
	j.Name, j.Namespace = JobName(cj.Name, t), cj.Namespace
	j.Labels, j.Annotations = tmpl.Labels, tmpl.Annotations
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations[api.AnnotationCronJobScheduledTimestamp] = t.UTC().Format(time.RFC3339)
	yes := true
	j.OwnerReferences = []api.OwnerReference{{APIVersion: api.BatchVersion, Kind: cronJobKind.Name, Name: cj.Name, UID: cj.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
	api.Default(j)
	err := c.st.Create(ctx, j)
	if api.IsAlreadyExists(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cronjob %s/%s: create job %s: %w", cj.Namespace, cj.Name, j.Name, err)
	}
	c.rec.Eventf(api.RefTo(cj), api.EventTypeNormal, framework.ReasonSuccessfulCreate, "Created job %s", j.Name)
	return j, nil
}

// prune deletes the oldest of finished beyond limit.
func (c *Controller) prune(ctx context.Context, cj *api.CronJob, finished []*api.Job, limit int32) error {
	if int32(len(finished)) <= limit {
		return nil
	}
	sort.Slice(finished, func(a, b int) bool {
		return scheduledAt(finished[a]).Before(scheduledAt(finished[b]))
	})
	var errs []error
	for _, j := range finished[:int32(len(finished))-limit] {
		errs = append(errs, c.deleteJob(ctx, cj, j))
	}
	return errors.Join(errs...)
}

func scheduledAt(j *api.Job) time.Time {
	if t, err := time.Parse(time.RFC3339, j.Annotations[api.AnnotationCronJobScheduledTimestamp]); err == nil {
		return t
	}
	return j.CreationTimestamp
}

// deleteJob deletes one of cj's Jobs and its pods (the pods first: a
// background cascade, done here rather than left to a garbage collector).
func (c *Controller) deleteJob(ctx context.Context, cj *api.CronJob, j *api.Job) error {
	sel := labels.SelectorFromSet(labels.Set{api.LabelControllerUID: j.UID})
	for _, o := range c.pods.List(j.Namespace, sel) {
		p := o.(*api.Pod)
		if _, err := c.st.Delete(ctx, podKind, p.Namespace, p.Name, p.ResourceVersion); err != nil && !api.IsNotFound(err) && !api.IsConflict(err) {
			return fmt.Errorf("cronjob %s/%s: delete pod %s of job %s: %w", cj.Namespace, cj.Name, p.Name, j.Name, err)
		}
	}
	if _, err := c.st.Delete(ctx, jobKind, j.Namespace, j.Name, j.ResourceVersion); err != nil && !api.IsNotFound(err) {
		if api.IsConflict(err) {
			return fmt.Errorf("cronjob %s/%s: job %s changed while being deleted; again", cj.Namespace, cj.Name, j.Name)
		}
		return fmt.Errorf("cronjob %s/%s: delete job %s: %w", cj.Namespace, cj.Name, j.Name, err)
	}
	c.rec.Eventf(api.RefTo(cj), api.EventTypeNormal, framework.ReasonSuccessfulDelete, "Deleted job %s", j.Name)
	return nil
}

// writeStatus stores st as cj's status when it changed (compare-and-set on
// a fresh read).
func (c *Controller) writeStatus(ctx context.Context, cj *api.CronJob, st api.CronJobStatus) error {
	if sameStatus(cj.Status, st) {
		return nil
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, cronJobKind, cj.Namespace, cj.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.CronJob)
		if cur.UID != cj.UID {
			return nil
		}
		next := st
		if cur.Status.LastScheduleTime != nil && (next.LastScheduleTime == nil || cur.Status.LastScheduleTime.After(*next.LastScheduleTime)) {
			next.LastScheduleTime = cur.Status.LastScheduleTime
		}
		cur.Status = next
		return c.st.Update(ctx, cur)
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("cronjob %s/%s: write status: %w", cj.Namespace, cj.Name, err)
	}
	return nil
}

func sameStatus(a, b api.CronJobStatus) bool {
	eqT := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	if !eqT(a.LastScheduleTime, b.LastScheduleTime) || !eqT(a.LastSuccessfulTime, b.LastSuccessfulTime) || len(a.Active) != len(b.Active) {
		return false
	}
	for i := range a.Active {
		if a.Active[i] != b.Active[i] {
			return false
		}
	}
	return true
}
