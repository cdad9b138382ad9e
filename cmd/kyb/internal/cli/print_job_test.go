package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestPrintJobs(t *testing.T) {
	created := time.Now().Add(-5 * time.Minute)
	start := created.Add(10 * time.Second)
	end := start.Add(42 * time.Second)
	i := func(v int32) *int32 { return &v }
	jobs := []api.Object{
		&api.Job{ObjectMeta: api.ObjectMeta{Name: "done", Namespace: "default", CreationTimestamp: created},
			Spec: api.JobSpec{Completions: i(20), Parallelism: i(5), Selector: &api.LabelSelector{MatchLabels: map[string]string{api.LabelControllerUID: "u1"}},
				Template: api.PodTemplateSpec{Spec: api.PodSpec{Containers: []api.Container{{Name: "work", Image: "kyb://prog"}}}}},
			Status: api.JobStatus{Succeeded: 20, StartTime: &start, CompletionTime: &end,
				Conditions: []api.JobCondition{{Type: api.JobComplete, Status: api.ConditionTrue}}}},
		&api.Job{ObjectMeta: api.ObjectMeta{Name: "running", Namespace: "default", CreationTimestamp: created},
			Spec:   api.JobSpec{Completions: i(3), Parallelism: i(1)},
			Status: api.JobStatus{Succeeded: 1, StartTime: &start}},
		&api.Job{ObjectMeta: api.ObjectMeta{Name: "queue", Namespace: "default", CreationTimestamp: created},
			Spec:   api.JobSpec{Parallelism: i(4)},
			Status: api.JobStatus{Conditions: []api.JobCondition{{Type: api.JobFailed, Status: api.ConditionTrue, Reason: api.JobReasonBackoffLimitExceeded}}}},
	}
	for _, tc := range []struct {
		format string
		header []string
		rows   [][]string
	}{
		{"", []string{"NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"}, [][]string{
			{"done", "Complete", "20/20", "42s", "5m"},
			{"running", "Running", "1/3", "4m50s", "5m"},
			{"queue", "Failed", "0/1 of 4", "5m"},
		}},
		{"wide", []string{"NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"}, [][]string{
			{"done", "Complete", "20/20", "42s", "5m", "work", "kyb://prog", api.LabelControllerUID + "=u1"},
		}},
	} {
		t.Run("format="+tc.format, func(t *testing.T) {
			var out bytes.Buffer
			p, err := newPrinter(&out, tc.format, false)
			if err != nil {
				t.Fatal(err)
			}
			kind, err := api.LookupKind("jobs")
			if err != nil {
				t.Fatal(err)
			}
			if err := p.print(kind, jobs); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 4 {
				t.Fatalf("table:\n%s", out.String())
			}
			if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(tc.header, " ") {
				t.Errorf("header %q, want %q", got, tc.header)
			}
			for i, want := range tc.rows {
				got := strings.Fields(lines[i+1])
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("row %d %q, want %q", i, got, want)
				}
			}
		})
	}
}

func TestPrintCronJobs(t *testing.T) {
	created := time.Now().Add(-time.Hour)
	last := time.Now().Add(-3 * time.Minute)
	utc := "UTC"
	cj := &api.CronJob{ObjectMeta: api.ObjectMeta{Name: "nightly", Namespace: "default", CreationTimestamp: created},
		Spec:   api.CronJobSpec{Schedule: "*/5 * * * *", TimeZone: &utc},
		Status: api.CronJobStatus{LastScheduleTime: &last, Active: []api.ObjectReference{{Name: "nightly-1"}}}}
	var out bytes.Buffer
	p, err := newPrinter(&out, "", false)
	if err != nil {
		t.Fatal(err)
	}
	kind, _ := api.LookupKind("cronjobs")
	if err := p.print(kind, []api.Object{cj}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE" {
		t.Fatalf("table:\n%s", out.String())
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); got != "nightly */5 * * * * UTC False 1 3m 60m" {
		t.Errorf("row %q", got)
	}
}
