package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) Eventf(_ api.ObjectReference, typ, reason, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, typ+" "+reason+" "+fmt.Sprintf(format, args...))
}

func (e *events) has(reason string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.list {
		if strings.Contains(s, " "+reason+" ") {
			return true
		}
	}
	return false
}

func TestCronJobSchedulesRunsOnce(t *testing.T) {
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, js, store.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var now time.Time
	setNow := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	ev := &events{}
	mgr := framework.NewManager(st, quiet)
	c := New(mgr, st, Config{Recorder: ev}, quiet)
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mgr.Add("cronjob", c)

	cj := &api.CronJob{ObjectMeta: api.ObjectMeta{Name: "nightly", Namespace: "default"}}
	cj.Spec.Schedule = "*/5 * * * *"
	utc := "UTC"
	cj.Spec.TimeZone = &utc
	cj.Spec.ConcurrencyPolicy = api.ForbidConcurrent
	one := int32(1)
	cj.Spec.SuccessfulJobsHistoryLimit = &one
	cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = api.RestartPolicyNever
	cj.Spec.JobTemplate.Spec.Template.Spec.Containers = []api.Container{{Name: "work", Image: "kyb://prog"}}
	api.Default(cj)
	if err := api.Validate(cj); err != nil {
		t.Fatal(err)
	}
	setNow(time.Now()) // nothing due before the CronJob exists
	if err := st.Create(ctx, cj); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Run(ctx) }()
	key := framework.Key{Namespace: "default", Name: "nightly"}
	created := cj.CreationTimestamp

	jobs := func() []*api.Job {
		objs, _, err := st.List(ctx, jobKind, store.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		var out []*api.Job
		for _, o := range objs {
			out = append(out, o.(*api.Job))
		}
		sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
		return out
	}
	names := func() string {
		var n []string
		for _, j := range jobs() {
			n = append(n, j.Name)
		}
		return strings.Join(n, ",")
	}
	// boundary is the last */5 minute at or before t.
	boundary := func(t time.Time) time.Time {
		t = t.UTC().Truncate(time.Minute)
		return t.Add(-time.Duration(t.Minute()%5) * time.Minute)
	}
	waitJobs := func(want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			if got := names(); got != want {
				return fmt.Errorf("jobs %q, want %q", got, want)
			}
			return nil
		})
	}
	complete := func(name string, at time.Time) {
		t.Helper()
		err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
			obj, err := st.Get(ctx, jobKind, "default", name)
			if err != nil {
				return err
			}
			j := obj.(*api.Job)
			j.Status.CompletionTime = &at
			j.Status.Conditions = []api.JobCondition{{Type: api.JobComplete, Status: api.ConditionTrue, LastTransitionTime: at}}
			return st.Update(ctx, j)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// 11 minutes later two runs were missed: one Job, for the newest.
	t1 := boundary(created.Add(11 * time.Minute))
	setNow(created.Add(11 * time.Minute))
	c.ctl.Queue().Add(key)
	first := JobName("nightly", t1)
	waitJobs(first)
	// Reconciling again at the same time creates nothing more.
	c.ctl.Queue().Add(key)
	time.Sleep(50 * time.Millisecond)
	if got := names(); got != first {
		t.Fatalf("jobs %q after a second reconcile, want %q", got, first)
	}
	j := jobs()[0]
	if r := j.OwnerReferences; len(r) != 1 || r[0].Kind != "CronJob" || r[0].UID != cj.UID {
		t.Errorf("job ownerReferences %+v", r)
	}
	if j.Annotations[api.AnnotationCronJobScheduledTimestamp] != t1.Format(time.RFC3339) || *j.Spec.BackoffLimit != 6 {
		t.Errorf("job %+v", j.ObjectMeta)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		obj, err := st.Get(ctx, cronJobKind, "default", "nightly")
		if err != nil {
			return err
		}
		s := obj.(*api.CronJob).Status
		if s.LastScheduleTime == nil || !s.LastScheduleTime.Equal(t1) || len(s.Active) != 1 || s.Active[0].Name != first {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})

	// Forbid: the next run is skipped while the first is active.
	setNow(t1.Add(5*time.Minute + time.Second))
	c.ctl.Queue().Add(key)
	testutil.Eventually(t, 5*time.Second, func() error {
		if !ev.has(ReasonJobAlreadyActive) {
			return fmt.Errorf("no JobAlreadyActive event")
		}
		return nil
	})
	if got := names(); got != first {
		t.Fatalf("jobs %q while the first is active (Forbid), want %q", got, first)
	}
	// Once it completed, the due run starts.
	complete(first, t1.Add(time.Minute))
	second := JobName("nightly", t1.Add(5*time.Minute))
	waitJobs(strings.Join(sortedStrings(first, second), ","))
	// The next completes too: the history keeps one successful Job.
	complete(second, t1.Add(6*time.Minute))
	setNow(t1.Add(10*time.Minute + time.Second))
	c.ctl.Queue().Add(key)
	third := JobName("nightly", t1.Add(10*time.Minute))
	waitJobs(strings.Join(sortedStrings(second, third), ","))
	// The status is written after the Jobs: wait for it too.
	testutil.Eventually(t, 5*time.Second, func() error {
		obj, err := st.Get(ctx, cronJobKind, "default", "nightly")
		if err != nil {
			return err
		}
		if s := obj.(*api.CronJob).Status; s.LastSuccessfulTime == nil || !s.LastSuccessfulTime.Equal(t1.Add(6*time.Minute)) {
			return fmt.Errorf("lastSuccessfulTime %v, want %v", s.LastSuccessfulTime, t1.Add(6*time.Minute))
		}
		return nil
	})
}

func sortedStrings(s ...string) []string { sort.Strings(s); return s }
