package job_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/job"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	jobKind = api.KindOf(&api.Job{})
	podKind = api.KindOf(&api.Pod{})
	nsKind  = api.KindOf(&api.Namespace{})
)

func testLog() *slog.Logger {
	if os.Getenv("KYB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// events records what the controller reports.
type events struct {
	mu   sync.Mutex
	list []string // "Type Reason message"
}

func (e *events) Eventf(ref api.ObjectReference, typ, reason, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, typ+" "+reason+" "+fmt.Sprintf(format, args...))
}

func (e *events) count(reason string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.list {
		if strings.Split(s, " ")[1] == reason {
			n++
		}
	}
	return n
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

func (e *events) find(substr string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.list {
		if strings.Contains(s, substr) {
			return s
		}
	}
	return ""
}

// env is a store, a Job controller and a fake kubelet that runs each pod
// as outcome says.
type env struct {
	t   *testing.T
	ctx context.Context
	st  *store.Store
	ev  *events

	mu      sync.Mutex
	started map[string]bool
	// outcome decides a started pod's end: "ok" (Succeeded), "fail"
	// (Failed) or "run" (keeps running until deleted).
	outcome func(p *api.Pod, attempt int) string
	// attempts counts pods started per index ("" for NonIndexed).
	attempts map[string]int
	// delay is how long a pod runs before it ends; default 5ms.
	delay time.Duration
	// stopCtl stops the running controller (and its manager).
	stopCtl func()
}

// startController runs a new manager and Job controller over the store,
// as a control plane that starts (or restarts) does.
func (e *env) startController() {
	ctx, cancel := context.WithCancel(e.ctx)
	mgr := framework.NewManager(e.st, testLog())
	c := job.New(mgr, e.st, job.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Recorder: e.ev}, testLog())
	mgr.Add("job", c)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Run(ctx) }()
	e.stopCtl = func() { cancel(); <-done }
}

func newEnv(t *testing.T, outcome func(p *api.Pod, attempt int) string) *env {
	t.Helper()
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, js, store.Config{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default"}}
	api.Default(ns)
	if err := st.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st, ev: &events{}, started: map[string]bool{}, outcome: outcome, attempts: map[string]int{}, delay: 5 * time.Millisecond}
	e.startController()
	kdone := make(chan struct{})
	go func() { defer close(kdone); e.kubelet() }()
	t.Cleanup(func() { cancel(); e.stopCtl(); <-kdone })
	return e
}

// kubelet plays a node's agent: it binds and starts every new pod, ends it
// as outcome says, and removes pods marked for deletion.
func (e *env) kubelet() {
	ch, err := e.st.Watch(e.ctx, podKind, 0)
	if err != nil {
		e.t.Error(err)
		return
	}
	for ev := range ch {
		if ev.Type != store.Added && ev.Type != store.Modified {
			continue
		}
		p := ev.Object.(*api.Pod)
		switch {
		case p.DeletionTimestamp != nil:
			go func() { _, _ = e.st.Delete(e.ctx, podKind, p.Namespace, p.Name, "") }()
		case p.Status.Phase == api.PodPending:
			e.mu.Lock()
			if e.started[p.Name] {
				e.mu.Unlock()
				continue
			}
			e.started[p.Name] = true
			idx := p.Annotations[api.AnnotationJobCompletionIndex]
			e.attempts[idx]++
			attempt := e.attempts[idx]
			e.mu.Unlock()
			go e.run(p, e.outcome(p, attempt))
		}
	}
}

func (e *env) setStatus(p *api.Pod, f func(p *api.Pod)) {
	_ = retry.RetryOnConflict(e.ctx, retry.DefaultRetry, func() error {
		obj, err := e.st.Get(e.ctx, podKind, p.Namespace, p.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Pod)
		if cur.DeletionTimestamp != nil {
			return nil
		}
		f(cur)
		return e.st.Update(e.ctx, cur)
	})
}

func (e *env) run(p *api.Pod, outcome string) {
	now := time.Now().UTC()
	e.setStatus(p, func(cur *api.Pod) {
		cur.Spec.NodeName = "n1"
		cur.Status.Phase = api.PodRunning
		cur.Status.StartTime = &now
	})
	if outcome == "run" {
		return
	}
	select {
	case <-time.After(e.delay):
	case <-e.ctx.Done():
		return
	}
	e.setStatus(p, func(cur *api.Pod) {
		code, phase, reason := int32(0), api.PodSucceeded, "Completed"
		if outcome == "fail" {
			code, phase, reason = 1, api.PodFailed, "Error"
		}
		cur.Status.Phase = phase
		cur.Status.ContainerStatuses = []api.ContainerStatus{{Name: "work", State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: code, Reason: reason, FinishedAt: time.Now().UTC()}}}}
	})
}

func newJob(name string, completions, parallelism int32) *api.Job {
	j := &api.Job{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}}
	j.Spec.Completions = &completions
	j.Spec.Parallelism = &parallelism
	j.Spec.Template.Spec.RestartPolicy = api.RestartPolicyNever
	wasm := api.RuntimeWasm
	j.Spec.Template.Spec.RuntimeClassName = &wasm
	j.Spec.Template.Spec.Containers = []api.Container{{Name: "work", Image: "kyb://prog"}}
	return j
}

func (e *env) create(j *api.Job) {
	e.t.Helper()
	api.Default(j)
	if err := api.Validate(j); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Create(e.ctx, j); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) job(name string) (*api.Job, error) {
	obj, err := e.st.Get(e.ctx, jobKind, "default", name)
	if err != nil {
		return nil, err
	}
	return obj.(*api.Job), nil
}

// waitCondition waits for condition typ True on Job name and returns it.
func (e *env) waitCondition(name, typ string, timeout time.Duration) *api.Job {
	e.t.Helper()
	var j *api.Job
	testutil.Eventually(e.t, timeout, func() error {
		var err error
		if j, err = e.job(name); err != nil {
			return err
		}
		if c := j.Status.Condition(typ); c == nil || c.Status != api.ConditionTrue {
			return fmt.Errorf("job %s: no %s condition yet: %+v", name, typ, j.Status)
		}
		return nil
	})
	return j
}

func (e *env) pods(j *api.Job) []*api.Pod {
	e.t.Helper()
	objs, _, err := e.st.List(e.ctx, podKind, store.ListOptions{Namespace: "default"})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*api.Pod
	for _, o := range objs {
		p := o.(*api.Pod)
		if p.Labels[api.LabelControllerUID] == j.UID {
			out = append(out, p)
		}
	}
	return out
}

// maxActive watches the committed pod states of Job name and reports the
// most pods that were active (neither finished nor being deleted) at any
// revision, on stop.
func (e *env) maxActive(name string) (stop func() int) {
	ctx, cancel := context.WithCancel(e.ctx)
	ch, err := e.st.Watch(ctx, podKind, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	result := make(chan int, 1)
	go func() {
		active := map[string]bool{}
		most := 0
		for ev := range ch {
			if ev.Object == nil {
				continue
			}
			p := ev.Object.(*api.Pod)
			if p.Labels[api.LabelJobName] != name {
				continue
			}
			live := ev.Type != store.Deleted && p.DeletionTimestamp == nil && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed
			if live {
				active[p.Name] = true
			} else {
				delete(active, p.Name)
			}
			most = max(most, len(active))
		}
		result <- most
	}()
	return func() int { cancel(); return <-result }
}

func TestJobRunsCompletionsWithinParallelism(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "ok" })
	stop := e.maxActive("batch")
	e.create(newJob("batch", 20, 5))
	j := e.waitCondition("batch", api.JobComplete, 30*time.Second)
	if most := stop(); most > 5 {
		t.Errorf("%d pods were active at once, parallelism is 5", most)
	} else if most < 2 {
		t.Errorf("at most %d pods active at once: parallelism 5 was not used", most)
	}
	if j.Status.Succeeded != 20 || j.Status.Failed != 0 || j.Status.Active != 0 {
		t.Errorf("status %+v, want 20 succeeded, 0 failed, 0 active", j.Status)
	}
	if j.Status.StartTime == nil || j.Status.CompletionTime == nil || j.Status.CompletionTime.Before(*j.Status.StartTime) {
		t.Errorf("startTime %v completionTime %v", j.Status.StartTime, j.Status.CompletionTime)
	}
	// The selector was generated, and every pod carries its labels and an
	// ownerReference to the Job.
	if j.Spec.Selector == nil || j.Spec.Selector.MatchLabels[api.LabelControllerUID] != j.UID || j.Spec.Template.Labels[api.LabelJobName] != "batch" {
		t.Errorf("selector %+v template labels %v", j.Spec.Selector, j.Spec.Template.Labels)
	}
	pods := e.pods(j)
	if len(pods) != 20 {
		t.Errorf("%d pods, want 20 (one per completion, none failed)", len(pods))
	}
	for _, p := range pods {
		ref := p.OwnerReferences
		if len(ref) != 1 || ref[0].Kind != "Job" || ref[0].UID != j.UID || ref[0].Controller == nil || !*ref[0].Controller || ref[0].APIVersion != api.BatchVersion {
			t.Errorf("pod %s ownerReferences %+v", p.Name, ref)
		}
		if !strings.HasPrefix(p.Name, "batch-") || len(p.Name) != len("batch-")+5 || p.Labels[api.LabelLegacyJobName] != "batch" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		if p.Spec.RestartPolicy != api.RestartPolicyNever || p.Spec.RuntimeClass() != api.RuntimeWasm {
			t.Errorf("pod %s spec %+v", p.Name, p.Spec)
		}
	}
	if n := e.ev.count(framework.ReasonSuccessfulCreate); n != 20 {
		t.Errorf("%d SuccessfulCreate events, want 20", n)
	}
	if n := e.ev.count(job.ReasonCompleted); n != 1 {
		t.Errorf("%d Completed events, want 1", n)
	}
}

func TestJobFailsAfterBackoffLimit(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "fail" })
	j := newJob("flaky", 1, 1)
	two := int32(2)
	j.Spec.BackoffLimit = &two
	e.create(j)
	j = e.waitCondition("flaky", api.JobFailed, 30*time.Second)
	c := j.Status.Condition(api.JobFailed)
	if c.Reason != api.JobReasonBackoffLimitExceeded || c.Message != job.MessageBackoffLimitExceeded {
		t.Errorf("Failed condition %+v, want reason BackoffLimitExceeded", c)
	}
	if j.Status.Failed != 3 || j.Status.Succeeded != 0 || j.Status.CompletionTime != nil {
		t.Errorf("status %+v, want 3 failed (backoffLimit 2 + 1), no completionTime", j.Status)
	}
	if j.Status.Condition(api.JobComplete) != nil {
		t.Errorf("a failed job is not complete: %+v", j.Status.Conditions)
	}
	// No pod after the limit.
	time.Sleep(50 * time.Millisecond)
	if pods := e.pods(j); len(pods) != 3 {
		t.Errorf("%d pods, want the 3 that failed", len(pods))
	}
	if e.ev.find("Warning BackoffLimitExceeded") == "" {
		t.Errorf("no BackoffLimitExceeded warning in %v", e.ev.all())
	}
}

func TestJobIndexedRunsEachIndexOnce(t *testing.T) {
	// Index 2 fails on its first attempt and is run again.
	e := newEnv(t, func(p *api.Pod, attempt int) string {
		if p.Annotations[api.AnnotationJobCompletionIndex] == "2" && attempt == 1 {
			return "fail"
		}
		return "ok"
	})
	stop := e.maxActive("idx")
	j := newJob("idx", 6, 3)
	m := api.IndexedCompletion
	j.Spec.CompletionMode = &m
	e.create(j)
	j = e.waitCondition("idx", api.JobComplete, 30*time.Second)
	if most := stop(); most > 3 {
		t.Errorf("%d pods active at once, parallelism 3", most)
	}
	if j.Status.CompletedIndexes != "0-5" || j.Status.Succeeded != 6 || j.Status.Failed != 1 {
		t.Errorf("status %+v, want completedIndexes 0-5, 6 succeeded, 1 failed", j.Status)
	}
	succeeded := map[string]int{}
	for _, p := range e.pods(j) {
		idx := p.Annotations[api.AnnotationJobCompletionIndex]
		if p.Labels[api.AnnotationJobCompletionIndex] != idx || !strings.HasPrefix(p.Name, "idx-"+idx+"-") {
			t.Errorf("pod %s: index %q, labels %v", p.Name, idx, p.Labels)
		}
		envIdx := ""
		for _, ev := range p.Spec.Containers[0].Env {
			if ev.Name == api.EnvJobCompletionIndex {
				envIdx = ev.Value
			}
		}
		if envIdx != idx {
			t.Errorf("pod %s: JOB_COMPLETION_INDEX %q, annotation %q", p.Name, envIdx, idx)
		}
		if p.Status.Phase == api.PodSucceeded {
			succeeded[idx]++
		}
	}
	for i := range 6 {
		if n := succeeded[strconv.Itoa(i)]; n != 1 {
			t.Errorf("index %d succeeded %d times, want once", i, n)
		}
	}
}

func TestJobActiveDeadlineStopsIt(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "run" })
	j := newJob("slow", 4, 2)
	one := int64(1)
	j.Spec.ActiveDeadlineSeconds = &one
	e.create(j)
	j = e.waitCondition("slow", api.JobFailed, 10*time.Second)
	c := j.Status.Condition(api.JobFailed)
	if c.Reason != api.JobReasonDeadlineExceeded || c.Message != job.MessageDeadlineExceeded {
		t.Errorf("Failed condition %+v, want DeadlineExceeded", c)
	}
	if j.Status.Active != 0 || j.Status.Failed != 2 {
		t.Errorf("status %+v, want 0 active and its 2 running pods failed", j.Status)
	}
	// Its running pods are stopped (the kubelet removes them).
	testutil.Eventually(t, 5*time.Second, func() error {
		if pods := e.pods(j); len(pods) != 0 {
			return fmt.Errorf("%d pods left", len(pods))
		}
		return nil
	})
}

func TestJobDeletedAfterTTL(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "ok" })
	j := newJob("short", 2, 2)
	zero := int32(0)
	j.Spec.TTLSecondsAfterFinished = &zero
	e.create(j)
	uid := j.UID
	testutil.Eventually(t, 30*time.Second, func() error {
		if _, err := e.job("short"); !api.IsNotFound(err) {
			return fmt.Errorf("job still there (%v)", err)
		}
		return nil
	})
	if pods := e.pods(&api.Job{ObjectMeta: api.ObjectMeta{UID: uid}}); len(pods) != 0 {
		t.Errorf("%d pods of the deleted job left", len(pods))
	}
}

func TestJobPodsObeyPodSecurity(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "ok" })
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "locked", Labels: map[string]string{api.LabelPodSecurityEnforce: "baseline"}}}
	api.Default(ns)
	if err := e.st.Create(e.ctx, ns); err != nil {
		t.Fatal(err)
	}
	j := newJob("priv", 1, 1)
	j.Namespace = "locked"
	yes := true
	j.Spec.Template.Spec.Containers[0].SecurityContext = &api.SecurityContext{Privileged: &yes}
	j.Spec.Template.Spec.RuntimeClassName = nil
	j.Spec.Template.Spec.Containers[0].Image = "busybox:1"
	e.create(j)
	testutil.Eventually(t, 10*time.Second, func() error {
		if e.ev.find("Warning FailedCreate") == "" {
			return fmt.Errorf("no FailedCreate event yet: %v", e.ev.all())
		}
		return nil
	})
	if msg := e.ev.find("Warning FailedCreate"); !strings.Contains(msg, "privileged") {
		t.Errorf("FailedCreate %q does not name the violation", msg)
	}
	objs, _, err := e.st.List(e.ctx, podKind, store.ListOptions{Namespace: "locked"})
	if err != nil || len(objs) != 0 {
		t.Errorf("%d pods created in a baseline namespace for a privileged template (%v)", len(objs), err)
	}
}

func TestJobControllerRestartContinuesFromStoredState(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "ok" })
	e.delay = 30 * time.Millisecond
	stop := e.maxActive("resumed")
	e.create(newJob("resumed", 12, 3))
	testutil.Eventually(t, 10*time.Second, func() error {
		j, err := e.job("resumed")
		if err != nil {
			return err
		}
		if j.Status.Succeeded < 3 {
			return fmt.Errorf("succeeded %d", j.Status.Succeeded)
		}
		return nil
	})
	// The control plane stops mid-job and comes back with empty memory.
	e.stopCtl()
	time.Sleep(50 * time.Millisecond)
	e.startController()
	j := e.waitCondition("resumed", api.JobComplete, 30*time.Second)
	if most := stop(); most > 3 {
		t.Errorf("%d pods active at once across the restart, parallelism 3", most)
	}
	if n := len(e.pods(j)); n != 12 || j.Status.Succeeded != 12 {
		t.Errorf("%d pods, %d succeeded; want 12 and 12 (none created twice)", n, j.Status.Succeeded)
	}
}

func TestJobSuspendStopsPodsAndResumes(t *testing.T) {
	e := newEnv(t, func(*api.Pod, int) string { return "run" })
	j := newJob("paused", 2, 2)
	yes := true
	j.Spec.Suspend = &yes
	e.create(j)
	j = e.waitCondition("paused", api.JobSuspended, 10*time.Second)
	if pods := e.pods(j); len(pods) != 0 {
		t.Fatalf("%d pods of a suspended job", len(pods))
	}
	// Resume: its pods start.
	err := retry.RetryOnConflict(e.ctx, retry.DefaultRetry, func() error {
		cur, err := e.job("paused")
		if err != nil {
			return err
		}
		no := false
		cur.Spec.Suspend = &no
		return e.st.Update(e.ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		cur, err := e.job("paused")
		if err != nil {
			return err
		}
		if c := cur.Status.Condition(api.JobSuspended); c == nil || c.Status != api.ConditionFalse || cur.Status.Active != 2 {
			return fmt.Errorf("status %+v", cur.Status)
		}
		return nil
	})
}
