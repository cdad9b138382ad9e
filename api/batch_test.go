package api

import (
	"os"
	"strings"
	"testing"
)

const jobManifest = `apiVersion: batch/v1
kind: Job
metadata:
  name: batch
spec:
  completions: 20
  parallelism: 5
  template:
    spec:
      runtimeClassName: wasm
      restartPolicy: Never
      containers:
      - name: work
        image: kyb://prog
`

func decodeJob(t *testing.T, manifest string) *Job {
	t.Helper()
	docs, err := Decode([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	j, ok := docs[0].Object.(*Job)
	if !ok {
		t.Fatalf("decoded %T, want *Job", docs[0].Object)
	}
	Default(j)
	return j
}

func TestJobDecodeAndDefaults(t *testing.T) {
	j := decodeJob(t, jobManifest)
	if err := Validate(j); err != nil {
		t.Fatalf("valid job: %v", err)
	}
	s := j.Spec
	if *s.Completions != 20 || *s.Parallelism != 5 || *s.BackoffLimit != 6 || s.Mode() != NonIndexedCompletion || *s.ManualSelector || *s.Suspend {
		t.Errorf("defaults: %+v", s)
	}
	if s.Template.Spec.RestartPolicy != RestartPolicyNever || s.Template.Spec.SchedulerName != DefaultSchedulerName || s.Template.Spec.TerminationGracePeriodSeconds == nil {
		t.Errorf("template defaults: %+v", s.Template.Spec)
	}
	if j.Namespace != DefaultNamespace || j.APIVersion != BatchVersion {
		t.Errorf("meta: %q %q", j.Namespace, j.APIVersion)
	}
	k, err := LookupKind("jobs")
	if err != nil || k != KindOf(&Job{}) || !k.Namespaced {
		t.Errorf("LookupKind(jobs) = %v, %v", k, err)
	}
	// Neither completions nor parallelism: one of each.
	j = decodeJob(t, strings.Replace(strings.Replace(jobManifest, "  completions: 20\n", "", 1), "  parallelism: 5\n", "", 1))
	if *j.Spec.Completions != 1 || *j.Spec.Parallelism != 1 {
		t.Errorf("completions %d parallelism %d, want 1 1", *j.Spec.Completions, *j.Spec.Parallelism)
	}
	// Parallelism alone: a work queue, completions stays unset.
	j = decodeJob(t, strings.Replace(jobManifest, "  completions: 20\n", "", 1))
	if j.Spec.Completions != nil {
		t.Errorf("completions %d, want unset", *j.Spec.Completions)
	}
}

func TestJobValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(j *Job)
		field string
		msg   string
	}{
		{"negative completions", func(j *Job) { j.Spec.Completions = ptr(int32(-1)) }, "spec.completions", "greater than or equal to 0"},
		{"negative parallelism", func(j *Job) { j.Spec.Parallelism = ptr(int32(-2)) }, "spec.parallelism", "greater than or equal to 0"},
		{"negative backoffLimit", func(j *Job) { j.Spec.BackoffLimit = ptr(int32(-1)) }, "spec.backoffLimit", "greater than or equal to 0"},
		{"negative ttl", func(j *Job) { j.Spec.TTLSecondsAfterFinished = ptr(int32(-1)) }, "spec.ttlSecondsAfterFinished", "greater than or equal to 0"},
		{"zero deadline", func(j *Job) { j.Spec.ActiveDeadlineSeconds = ptr(int64(0)) }, "spec.activeDeadlineSeconds", "greater than 0"},
		{"restartPolicy Always", func(j *Job) { j.Spec.Template.Spec.RestartPolicy = RestartPolicyAlways }, "spec.template.spec.restartPolicy", `unsupported value "Always"`},
		{"restartPolicy missing", func(j *Job) { j.Spec.Template.Spec.RestartPolicy = "" }, "spec.template.spec.restartPolicy", "required"},
		{"bad completionMode", func(j *Job) { m := CompletionMode("Sometimes"); j.Spec.CompletionMode = &m }, "spec.completionMode", "unsupported value"},
		{"Indexed without completions", func(j *Job) { m := IndexedCompletion; j.Spec.CompletionMode = &m; j.Spec.Completions = nil }, "spec.completions", "required when completionMode is Indexed"},
		{"no containers", func(j *Job) { j.Spec.Template.Spec.Containers = nil }, "spec.template.spec.containers", "required"},
		{"image missing", func(j *Job) { j.Spec.Template.Spec.Containers[0].Image = "" }, "spec.template.spec.containers[0].image", "required"},
		{"manual selector missing", func(j *Job) { j.Spec.ManualSelector = ptr(true) }, "spec.selector", "required"},
		{"manual selector not matching", func(j *Job) {
			j.Spec.ManualSelector = ptr(true)
			j.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "a"}}
			j.Spec.Template.Labels = map[string]string{"app": "b"}
		}, "spec.template.metadata.labels", "does not match"},
		{"manual selector empty", func(j *Job) { j.Spec.ManualSelector = ptr(true); j.Spec.Selector = &LabelSelector{} }, "spec.selector", "empty selector"},
		{"selector without manualSelector", func(j *Job) {
			j.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "a"}}
			j.Spec.Template.Labels = map[string]string{"app": "a"}
		}, "spec.selector", "not auto-generated"},
		{"name too long", func(j *Job) { j.Name = strings.Repeat("a", 64) }, "metadata.name", "63 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := decodeJob(t, jobManifest)
			tc.edit(j)
			err := Validate(j)
			if err == nil {
				t.Fatal("valid, want 422")
			}
			st := asInvalid(t, err)
			if st.Code != 422 {
				t.Errorf("code %d", st.Code)
			}
			msg, ok := causeFor(st, tc.field)
			if !ok || !strings.Contains(msg, tc.msg) {
				t.Errorf("causes %+v, want %s: ...%s...", st.Causes, tc.field, tc.msg)
			}
		})
	}
}

func TestJobGeneratedSelectorValid(t *testing.T) {
	j := decodeJob(t, jobManifest)
	j.UID = "u-1"
	j.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{LabelControllerUID: "u-1"}}
	j.Spec.Template.Labels = map[string]string{LabelControllerUID: "u-1", LabelJobName: "batch"}
	if err := Validate(j); err != nil {
		t.Fatalf("generated selector refused: %v", err)
	}
}

func TestJobUpdateImmutable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(j *Job)
		field string // "" when the change is allowed
	}{
		{"parallelism may change", func(j *Job) { j.Spec.Parallelism = ptr(int32(2)) }, ""},
		{"backoffLimit may change", func(j *Job) { j.Spec.BackoffLimit = ptr(int32(1)) }, ""},
		{"deadline may change", func(j *Job) { j.Spec.ActiveDeadlineSeconds = ptr(int64(9)) }, ""},
		{"completions", func(j *Job) { j.Spec.Completions = ptr(int32(3)) }, "spec.completions"},
		{"template", func(j *Job) { j.Spec.Template.Spec.Containers[0].Image = "kyb://other" }, "spec.template"},
		{"completionMode", func(j *Job) { m := IndexedCompletion; j.Spec.CompletionMode = &m }, "spec.completionMode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := decodeJob(t, jobManifest)
			nj := DeepCopy(old)
			tc.edit(nj)
			err := ValidateUpdate(old, nj)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("allowed, want 422")
			}
			if _, ok := causeFor(asInvalid(t, err), tc.field); !ok {
				t.Errorf("causes %+v lack %s", asInvalid(t, err).Causes, tc.field)
			}
		})
	}
}

func TestJobExampleIsValid(t *testing.T) {
	data, err := os.ReadFile("../examples/batch-wasm/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j := decodeJob(t, string(data))
	if err := Validate(j); err != nil {
		t.Fatalf("examples/batch-wasm/job.yaml: %v", err)
	}
	if j.Spec.Mode() != IndexedCompletion || *j.Spec.Completions != 20 || *j.Spec.Parallelism != 5 {
		t.Errorf("example spec %+v", j.Spec)
	}
}
