package api

import (
	"strings"
	"testing"
)

const cronJobManifest = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          runtimeClassName: wasm
          restartPolicy: OnFailure
          containers:
          - name: work
            image: kyb://prog
`

func decodeCronJob(t *testing.T) *CronJob {
	t.Helper()
	docs, err := Decode([]byte(cronJobManifest))
	if err != nil {
		t.Fatal(err)
	}
	cj, ok := docs[0].Object.(*CronJob)
	if !ok {
		t.Fatalf("decoded %T", docs[0].Object)
	}
	Default(cj)
	return cj
}

func TestCronJobDefaults(t *testing.T) {
	cj := decodeCronJob(t)
	if err := Validate(cj); err != nil {
		t.Fatal(err)
	}
	s := cj.Spec
	if s.ConcurrencyPolicy != AllowConcurrent || *s.Suspend || *s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 {
		t.Errorf("defaults %+v", s)
	}
	if *s.JobTemplate.Spec.BackoffLimit != 6 || *s.JobTemplate.Spec.Completions != 1 {
		t.Errorf("job template defaults %+v", s.JobTemplate.Spec)
	}
	if k, err := LookupKind("cj"); err != nil || k.Name != "CronJob" {
		t.Errorf("LookupKind(cj) = %v, %v", k, err)
	}
}

func TestCronJobValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(cj *CronJob)
		field string
		msg   string
	}{
		{"bad schedule", func(cj *CronJob) { cj.Spec.Schedule = "every day" }, "spec.schedule", "invalid schedule"},
		{"no schedule", func(cj *CronJob) { cj.Spec.Schedule = "" }, "spec.schedule", "required"},
		{"bad time zone", func(cj *CronJob) { z := "Mars/Olympus"; cj.Spec.TimeZone = &z }, "spec.timeZone", "unknown time zone"},
		{"bad policy", func(cj *CronJob) { cj.Spec.ConcurrencyPolicy = "Sometimes" }, "spec.concurrencyPolicy", "unsupported value"},
		{"negative deadline", func(cj *CronJob) { d := int64(-1); cj.Spec.StartingDeadlineSeconds = &d }, "spec.startingDeadlineSeconds", "greater than or equal to 0"},
		{"negative history", func(cj *CronJob) { cj.Spec.FailedJobsHistoryLimit = ptr(int32(-1)) }, "spec.failedJobsHistoryLimit", "greater than or equal to 0"},
		{"restartPolicy Always", func(cj *CronJob) { cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = RestartPolicyAlways }, "spec.jobTemplate.spec.template.spec.restartPolicy", "unsupported value"},
		{"negative completions", func(cj *CronJob) { cj.Spec.JobTemplate.Spec.Completions = ptr(int32(-3)) }, "spec.jobTemplate.spec.completions", "greater than or equal to 0"},
		{"name too long", func(cj *CronJob) { cj.Name = strings.Repeat("n", 53) }, "metadata.name", "52 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cj := decodeCronJob(t)
			tc.edit(cj)
			err := Validate(cj)
			if err == nil {
				t.Fatal("valid, want 422")
			}
			st := asInvalid(t, err)
			if msg, ok := causeFor(st, tc.field); !ok || !strings.Contains(msg, tc.msg) {
				t.Errorf("causes %+v, want %s: ...%s...", st.Causes, tc.field, tc.msg)
			}
		})
	}
}
