package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// jobManifest is a Job of wasm pods running kyb://prog with args; extra
// goes under spec (indented).
func jobManifest(name, extra string, args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
spec:
%s  template:
    spec:
      runtimeClassName: wasm
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: kyb://prog
        args: [%s]
`, name, extra, strings.Join(q, ", "))
}

func (c *cluster) job(name string) (*api.Job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := c.c.Get(ctx, "Job", "default", name)
	if err != nil {
		return nil, err
	}
	return o.(*api.Job), nil
}

// waitJob waits for Job name's condition typ and returns the Job.
func (c *cluster) waitJob(name, typ string, timeout time.Duration) *api.Job {
	c.t.Helper()
	var j *api.Job
	testutil.Eventually(c.t, timeout, func() error {
		var err error
		if j, err = c.job(name); err != nil {
			return err
		}
		if cond := j.Status.Condition(typ); cond == nil || cond.Status != api.ConditionTrue {
			return fmt.Errorf("job %s: no %s yet: active %d succeeded %d failed %d %+v", name, typ, j.Status.Active, j.Status.Succeeded, j.Status.Failed, j.Status.Conditions)
		}
		return nil
	})
	return j
}

// activeWatch follows the committed states of Job name's pods and keeps
// the most that were active (neither finished nor terminating) at once.
type activeWatch struct {
	mu     sync.Mutex
	most   int
	active map[string]bool
	phases map[string]api.PodPhase
}

func (c *cluster) watchActive(t *testing.T, job string) *activeWatch {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events, err := c.c.Watch(ctx, "Pod", "default")
	if err != nil {
		t.Fatal(err)
	}
	w := &activeWatch{active: map[string]bool{}, phases: map[string]api.PodPhase{}}
	go func() {
		for ev := range events {
			p, ok := ev.Object.(*api.Pod)
			if !ok || p.Labels[api.LabelJobName] != job {
				continue
			}
			w.mu.Lock()
			live := ev.Type != api.EventDeleted && p.DeletionTimestamp == nil && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed
			if live {
				w.active[p.Name] = true
			} else {
				delete(w.active, p.Name)
			}
			if ev.Type != api.EventDeleted {
				w.phases[p.Name] = p.Status.Phase
			}
			w.most = max(w.most, len(w.active))
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *activeWatch) result() (most int, phases map[string]api.PodPhase) {
	w.mu.Lock()
	defer w.mu.Unlock()
	phases = map[string]api.PodPhase{}
	for k, v := range w.phases {
		phases[k] = v
	}
	return w.most, phases
}

func TestWasmJobOf20CompletionsWithParallelism5(t *testing.T) {
	c, _ := wasmCluster(t)
	w := c.watchActive(t, "batch")
	out := c.kyb("apply", "-f", writeFile(t, jobManifest("batch", "  completions: 20\n  parallelism: 5\n", "out", "work done", "sleep", "100ms")))
	if !strings.Contains(out, "job/batch created") {
		t.Fatalf("apply printed %q", out)
	}
	j := c.waitJob("batch", api.JobComplete, 120*time.Second)
	if j.Status.Succeeded != 20 || j.Status.Failed != 0 || j.Status.Active != 0 || j.Status.CompletionTime == nil {
		t.Errorf("status %+v, want 20 succeeded", j.Status)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, phases := w.result(); len(phases) < 20 {
			return fmt.Errorf("watch saw %d pods", len(phases))
		}
		return nil
	})
	most, phases := w.result()
	if most > 5 {
		t.Errorf("%d pods of the job were active at once, parallelism is 5", most)
	}
	if most < 2 {
		t.Errorf("at most %d pods ran at once: parallelism was not used", most)
	}
	succeeded := 0
	for _, ph := range phases {
		if ph == api.PodSucceeded {
			succeeded++
		}
	}
	if succeeded != 20 || len(phases) != 20 {
		t.Errorf("%d pods, %d succeeded; want 20 and 20", len(phases), succeeded)
	}
	get := c.kyb("get", "jobs")
	lines := strings.Split(strings.TrimSpace(get), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME STATUS COMPLETIONS DURATION AGE" {
		t.Fatalf("kyb get jobs:\n%s", get)
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "batch" || f[1] != "Complete" || f[2] != "20/20" {
		t.Errorf("kyb get jobs row %q", lines[1])
	}
	// Re-applying the manifest changes nothing (the generated selector and
	// the status are kept).
	if out := c.kyb("apply", "-f", writeFile(t, jobManifest("batch", "  completions: 20\n  parallelism: 5\n", "out", "work done", "sleep", "100ms"))); !strings.Contains(out, "job/batch unchanged") {
		t.Errorf("second apply printed %q", out)
	}
	if ev := c.kyb("get", "events", "--field-selector", "involvedObject.name=batch"); !strings.Contains(ev, "SuccessfulCreate") || !strings.Contains(ev, "Completed") {
		t.Errorf("events of the job:\n%s", ev)
	}
}

func TestWasmJobFailsAtBackoffLimit(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(jobManifest("doomed", "  backoffLimit: 2\n", "err", "cannot work", "exit", "3"))
	j := c.waitJob("doomed", api.JobFailed, 120*time.Second)
	cond := j.Status.Condition(api.JobFailed)
	if cond.Reason != api.JobReasonBackoffLimitExceeded {
		t.Errorf("Failed condition %+v, want BackoffLimitExceeded", cond)
	}
	if j.Status.Failed != 3 || j.Status.Succeeded != 0 {
		t.Errorf("status %+v, want 3 failed", j.Status)
	}
	if f := strings.Fields(strings.Split(strings.TrimSpace(c.kyb("get", "jobs")), "\n")[1]); f[1] != "Failed" || f[2] != "0/1" {
		t.Errorf("kyb get jobs row %q", f)
	}
}

func TestWasmIndexedJobRunsEachIndexOnce(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(jobManifest("idx", "  completions: 4\n  parallelism: 2\n  completionMode: Indexed\n", "env", api.EnvJobCompletionIndex))
	j := c.waitJob("idx", api.JobComplete, 120*time.Second)
	if j.Status.CompletedIndexes != "0-3" {
		t.Errorf("completedIndexes %q, want 0-3", j.Status.CompletedIndexes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, _, err := c.c.List(ctx, api.ListRequest{Kind: "Pod", Namespace: "default", LabelSelector: api.LabelJobName + "=idx"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, o := range pods {
		p := o.(*api.Pod)
		idx := p.Annotations[api.AnnotationJobCompletionIndex]
		seen[idx]++
		want := api.EnvJobCompletionIndex + "=" + idx
		testutil.Eventually(t, 10*time.Second, func() error {
			if logs := c.kyb("logs", p.Name); !strings.Contains(logs, want) {
				return fmt.Errorf("pod %s logs %q lack %q", p.Name, logs, want)
			}
			return nil
		})
	}
	for _, idx := range []string{"0", "1", "2", "3"} {
		if seen[idx] != 1 {
			t.Errorf("index %s ran in %d pods, want 1 (%v)", idx, seen[idx], seen)
		}
	}
}

func TestWasmJobActiveDeadlineStopsModules(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(jobManifest("forever", "  parallelism: 2\n  completions: 2\n  activeDeadlineSeconds: 2\n", "sleep", "forever"))
	j := c.waitJob("forever", api.JobFailed, 60*time.Second)
	if cond := j.Status.Condition(api.JobFailed); cond.Reason != api.JobReasonDeadlineExceeded {
		t.Errorf("Failed condition %+v, want DeadlineExceeded", cond)
	}
	// The agent stops the running modules and their pods go away.
	testutil.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pods, _, err := c.c.List(ctx, api.ListRequest{Kind: "Pod", Namespace: "default", LabelSelector: api.LabelJobName + "=forever"})
		if err != nil {
			return err
		}
		if len(pods) != 0 {
			return fmt.Errorf("%d pods of the job left", len(pods))
		}
		return nil
	})
}

func TestJobBadInputIsRefusedWithFieldPaths(t *testing.T) {
	c := startCluster(t)
	bad := strings.Replace(jobManifest("bad", "  completions: -1\n", "exit", "0"), "restartPolicy: Never", "restartPolicy: Always", 1)
	_, stderr, err := c.kybErr("apply", "-f", writeFile(t, bad))
	if err == nil {
		t.Fatal("a Job with completions -1 and restartPolicy Always was applied")
	}
	msg := err.Error() + stderr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st *api.Status
	if _, err := c.c.Apply(ctx, []byte(bad)); !errors.As(err, &st) || st.Code != 422 || len(st.Causes) != 2 {
		t.Errorf("apply through the API: %v (%+v), want 422 with two causes", err, st)
	}
	for _, want := range []string{"spec.completions", "spec.template.spec.restartPolicy", `"Always"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	if _, err := c.job("bad"); !api.IsNotFound(err) {
		t.Errorf("refused Job stored: %v", err)
	}
	// The template of a Job never changes.
	c.apply(jobManifest("fixed", "  parallelism: 0\n", "exit", "0"))
	_, stderr, err = c.kybErr("apply", "-f", writeFile(t, jobManifest("fixed", "  parallelism: 0\n", "exit", "1")))
	if err == nil || !strings.Contains(err.Error()+stderr, "spec.template: field is immutable") {
		t.Errorf("template change: err %v, stderr %q", err, stderr)
	}
	// Parallelism may change.
	if out := c.kyb("apply", "-f", writeFile(t, jobManifest("fixed", "  parallelism: 1\n", "exit", "0"))); !strings.Contains(out, "job/fixed configured") {
		t.Errorf("parallelism change printed %q", out)
	}
}

func TestWasmCronJobRunsJobs(t *testing.T) {
	c, _ := wasmCluster(t)
	manifest := `apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "@every 1s"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          runtimeClassName: wasm
          restartPolicy: Never
          containers:
          - name: work
            image: kyb://prog
            args: ["out", "tick"]
`
	if out := c.kyb("apply", "-f", writeFile(t, manifest)); !strings.Contains(out, "cronjob/tick created") {
		t.Fatalf("apply printed %q", out)
	}
	// A Job of the CronJob runs its module to completion.
	testutil.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		jobs, _, err := c.c.List(ctx, api.ListRequest{Kind: "Job", Namespace: "default"})
		if err != nil {
			return err
		}
		for _, o := range jobs {
			j := o.(*api.Job)
			if fin, how := j.Finished(); fin && how == api.JobComplete && strings.HasPrefix(j.Name, "tick-") && j.OwnerReferences[0].Kind == "CronJob" {
				return nil
			}
		}
		return fmt.Errorf("no completed Job of the CronJob yet among %d", len(jobs))
	})
	get := c.kyb("get", "cronjobs")
	lines := strings.Split(strings.TrimSpace(get), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE" ||
		!strings.HasPrefix(lines[1], "tick") || !strings.Contains(lines[1], "@every 1s") || !strings.Contains(lines[1], "False") {
		t.Errorf("kyb get cronjobs:\n%s", get)
	}
	cj, err := func() (*api.CronJob, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		o, err := c.c.Get(ctx, "CronJob", "default", "tick")
		if err != nil {
			return nil, err
		}
		return o.(*api.CronJob), nil
	}()
	if err != nil || cj.Status.LastScheduleTime == nil {
		t.Errorf("cronjob status %+v (%v), want a lastScheduleTime", cj, err)
	}
}
