package api

import (
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// BatchVersion is the apiVersion of the Job kind, as Kubernetes' batch/v1.
const BatchVersion = "batch/v1"

// Labels and annotations of Jobs and their pods, as Kubernetes sets them.
const (
	// LabelControllerUID is set on a Job's pods (and in its generated
	// selector) to the Job's uid, so that a Job created again under the
	// same name never counts the pods of the one before.
	LabelControllerUID = "batch.kubernetes.io/controller-uid"
	// LabelJobName is set on a Job's pods to the Job's name.
	LabelJobName = "batch.kubernetes.io/job-name"
	// LabelLegacyControllerUID and LabelLegacyJobName are the older
	// spellings Kubernetes still sets alongside.
	LabelLegacyControllerUID = "controller-uid"
	LabelLegacyJobName       = "job-name"
	// AnnotationJobCompletionIndex is the completion index of a pod of an
	// Indexed Job (also a label of the pod, and the env JOB_COMPLETION_INDEX
	// of its containers).
	AnnotationJobCompletionIndex = "batch.kubernetes.io/job-completion-index"
	// EnvJobCompletionIndex is the environment variable holding a pod's
	// completion index.
	EnvJobCompletionIndex = "JOB_COMPLETION_INDEX"
)

// CompletionMode says how a Job's pods count towards its completions.
type CompletionMode string

// Completion modes.
const (
	// NonIndexedCompletion: the Job is complete after spec.completions pods
	// succeeded, whichever they were.
	NonIndexedCompletion CompletionMode = "NonIndexed"
	// IndexedCompletion: each pod has an index from 0 to completions-1;
	// the Job is complete when one pod of every index succeeded.
	IndexedCompletion CompletionMode = "Indexed"
)

// Job defaults and limits, as Kubernetes'.
const (
	DefaultJobBackoffLimit = int32(6)
	// MaxIndexedJobCompletions bounds completions and parallelism of an
	// Indexed Job.
	MaxIndexedJobCompletions = 100000
)

// Job runs pods until a number of them succeeded (a batch of work), as
// Kubernetes' batch/v1 Job. Its controller creates the pods (with an
// ownerReference to the Job), never more than spec.parallelism at once,
// replaces failed ones until spec.backoffLimit failures, and records the
// outcome in status.
type Job struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       JobSpec   `json:"spec"`
	Status     JobStatus `json:"status,omitzero"`
}

// JobSpec is the desired state of a Job.
type JobSpec struct {
	// Parallelism is the most pods running at once; default 1. 0 pauses.
	Parallelism *int32 `json:"parallelism,omitempty"`
	// Completions is how many pods must succeed. Unset (with parallelism
	// set) means a work queue: the Job is complete when one pod succeeded
	// and none is running. Defaults to 1 when parallelism is unset too.
	Completions *int32 `json:"completions,omitempty"`
	// ActiveDeadlineSeconds bounds how long the Job may run from its
	// startTime; past it, its pods are stopped and it fails with reason
	// DeadlineExceeded.
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// BackoffLimit is how many pod failures (restarts, for restartPolicy
	// OnFailure) are retried before the Job fails with reason
	// BackoffLimitExceeded; default 6.
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
	// Selector selects the Job's pods. It is generated (the Job's uid under
	// LabelControllerUID) unless ManualSelector is true.
	Selector *LabelSelector `json:"selector,omitempty"`
	// ManualSelector lets the user give Selector; default false.
	ManualSelector *bool `json:"manualSelector,omitempty"`
	// Template is the pod to run; its restartPolicy must be Never or
	// OnFailure.
	Template PodTemplateSpec `json:"template"`
	// TTLSecondsAfterFinished, when set, deletes the Job and its pods that
	// long after it finished (Complete or Failed).
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// CompletionMode is NonIndexed (the default) or Indexed.
	CompletionMode *CompletionMode `json:"completionMode,omitempty"`
	// Suspend, when true, stops the Job's pods and creates none until it is
	// false again; default false.
	Suspend *bool `json:"suspend,omitempty"`
}

// Job condition types and reasons.
const (
	JobComplete  = "Complete"
	JobFailed    = "Failed"
	JobSuspended = "Suspended"

	JobReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	JobReasonDeadlineExceeded     = "DeadlineExceeded"
)

// JobCondition is one condition of a Job: Complete, Failed or Suspended.
type JobCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastProbeTime      time.Time       `json:"lastProbeTime,omitzero"`
	LastTransitionTime time.Time       `json:"lastTransitionTime,omitzero"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// JobStatus is the observed state of a Job, written by its controller.
type JobStatus struct {
	Conditions []JobCondition `json:"conditions,omitempty"`
	// StartTime is when the controller first acted on the Job.
	StartTime *time.Time `json:"startTime,omitempty"`
	// CompletionTime is when the Job completed (only on success).
	CompletionTime *time.Time `json:"completionTime,omitempty"`
	// Active, Succeeded and Failed count the Job's running, succeeded and
	// failed pods.
	Active    int32 `json:"active,omitempty"`
	Succeeded int32 `json:"succeeded,omitempty"`
	Failed    int32 `json:"failed,omitempty"`
	// Ready counts the active pods whose Ready condition is True.
	Ready *int32 `json:"ready,omitempty"`
	// CompletedIndexes lists the succeeded indexes of an Indexed Job, as
	// Kubernetes writes them: "1,3-5,7".
	CompletedIndexes string `json:"completedIndexes,omitempty"`
}

// Condition returns the condition of type typ, or nil.
func (s *JobStatus) Condition(typ string) *JobCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// Finished reports whether the Job has a Complete or Failed condition that
// is True, and which.
func (j *Job) Finished() (bool, string) {
	for _, c := range j.Status.Conditions {
		if (c.Type == JobComplete || c.Type == JobFailed) && c.Status == ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

// Mode returns the Job's completion mode (NonIndexed when unset).
func (s *JobSpec) Mode() CompletionMode {
	if s.CompletionMode == nil || *s.CompletionMode == "" {
		return NonIndexedCompletion
	}
	return *s.CompletionMode
}

var jobKind = &Kind{Name: "Job", Plural: "jobs", Short: []string{"job"}, Namespaced: true, APIVersions: []string{BatchVersion, "kyb/v1"}, New: func() Object { return &Job{} }}

// defaultJob sets Kubernetes' Job defaults: parallelism 1, completions 1
// when both are unset, backoffLimit 6, completionMode NonIndexed,
// manualSelector false, suspend false, and the pod defaults on the
// template's spec (but not restartPolicy: the template must name Never or
// OnFailure).
func defaultJob(j *Job) { defaultJobSpec(&j.Spec) }

// defaultJobSpec sets the Job defaults on s (a Job's or a CronJob's job
// template's spec).
func defaultJobSpec(s *JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptrTo(int32(1))
	}
	if s.Parallelism == nil {
		s.Parallelism = ptrTo(int32(1))
	}
	if s.BackoffLimit == nil {
		s.BackoffLimit = ptrTo(DefaultJobBackoffLimit)
	}
	if s.CompletionMode == nil {
		m := NonIndexedCompletion
		s.CompletionMode = &m
	}
	if s.ManualSelector == nil {
		s.ManualSelector = ptrTo(false)
	}
	if s.Suspend == nil {
		s.Suspend = ptrTo(false)
	}
	// The pod defaults, through a pod that holds the template's spec.
	rp := s.Template.Spec.RestartPolicy
	p := &Pod{Spec: s.Template.Spec}
	defaultPod(p)
	s.Template.Spec = p.Spec
	s.Template.Spec.RestartPolicy = rp
}

func ptrTo[T any](v T) *T { return &v }

// validateJob checks a Job as Kubernetes does; every problem names its
// field path.
func validateJob(e *errs, j *Job) {
	if len(j.Name) > 63 {
		// Its pods carry the name as a label value.
		e.add(field.NewPath("metadata", "name"), "must be no more than 63 characters (it is a label value of the Job's pods)")
	}
	validateJobSpec(e, &j.Spec, field.NewPath("spec"))
}

// validateJobSpec checks a Job's spec at path sp (a Job's, or a CronJob's
// job template's).
func validateJobSpec(e *errs, s *JobSpec, sp *field.Path) {
	nonNeg32 := func(v *int32, name string) {
		if v != nil && *v < 0 {
			e.add(sp.Child(name), "must be greater than or equal to 0 (got %d)", *v)
		}
	}
	nonNeg32(s.Parallelism, "parallelism")
	nonNeg32(s.Completions, "completions")
	nonNeg32(s.BackoffLimit, "backoffLimit")
	nonNeg32(s.TTLSecondsAfterFinished, "ttlSecondsAfterFinished")
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		e.add(sp.Child("activeDeadlineSeconds"), "must be greater than 0 (got %d)", *s.ActiveDeadlineSeconds)
	}
	switch s.Mode() {
	case NonIndexedCompletion:
	case IndexedCompletion:
		switch {
		case s.Completions == nil:
			e.add(sp.Child("completions"), "required when completionMode is Indexed")
		case *s.Completions > MaxIndexedJobCompletions:
			e.add(sp.Child("completions"), "must be less than or equal to %d when completionMode is Indexed", MaxIndexedJobCompletions)
		}
		if s.Parallelism != nil && *s.Parallelism > MaxIndexedJobCompletions {
			e.add(sp.Child("parallelism"), "must be less than or equal to %d when completionMode is Indexed", MaxIndexedJobCompletions)
		}
	default:
		e.unsupported(sp.Child("completionMode"), string(*s.CompletionMode), string(NonIndexedCompletion), string(IndexedCompletion))
	}
	tp := sp.Child("template")
	validateLabels(e, s.Template.Labels, tp.Child("metadata", "labels"))
	manual := s.ManualSelector != nil && *s.ManualSelector
	switch {
	case manual && s.Selector == nil:
		e.required(sp.Child("selector"))
	case s.Selector != nil:
		validateJobSelector(e, s.Selector, s.Template.Labels, sp.Child("selector"), tp.Child("metadata", "labels"))
		if !manual && (len(s.Selector.MatchExpressions) > 0 || len(s.Selector.MatchLabels) != 1 || s.Selector.MatchLabels[LabelControllerUID] == "") {
			e.add(sp.Child("selector"), "`selector` not auto-generated: set spec.manualSelector to true to give one, or leave it out")
		}
	}
	switch s.Template.Spec.RestartPolicy {
	case RestartPolicyNever, RestartPolicyOnFailure:
	case "":
		e.add(tp.Child("spec", "restartPolicy"), "required: supported values: %q, %q", RestartPolicyOnFailure, RestartPolicyNever)
	default:
		e.unsupported(tp.Child("spec", "restartPolicy"), string(s.Template.Spec.RestartPolicy), string(RestartPolicyOnFailure), string(RestartPolicyNever))
	}
	validatePodSpec(e, &s.Template.Spec, tp.Child("spec"))
	validatePodAnnotations(e, s.Template.Annotations, &s.Template.Spec, tp.Child("metadata", "annotations"))
}

// validateJobSelector checks a Job's selector: valid requirements, not
// empty, and matching the template's labels.
func validateJobSelector(e *errs, ls *LabelSelector, tmplLabels map[string]string, p, lp *field.Path) {
	validateLabels(e, ls.MatchLabels, p.Child("matchLabels"))
	sel, err := ls.Selector()
	if err != nil {
		e.add(p, "invalid: %v", err)
		return
	}
	if sel.Empty() {
		e.add(p, "empty selector is invalid: it would select every pod of the namespace")
		return
	}
	if !sel.Matches(labels.Set(tmplLabels)) {
		e.add(lp, "`selector` does not match template `labels`")
	}
}

// validateJobUpdate checks what may not change in a Job: its selector (once
// generated), manualSelector, completions, completionMode and template.
func validateJobUpdate(e *errs, old, new *Job) {
	sp := field.NewPath("spec")
	if old.Spec.Selector != nil && !reflect.DeepEqual(old.Spec.Selector, new.Spec.Selector) {
		e.add(sp.Child("selector"), "field is immutable")
	}
	if !reflect.DeepEqual(old.Spec.ManualSelector, new.Spec.ManualSelector) {
		e.add(sp.Child("manualSelector"), "field is immutable")
	}
	if !reflect.DeepEqual(old.Spec.Completions, new.Spec.Completions) {
		e.add(sp.Child("completions"), "field is immutable")
	}
	if old.Spec.Mode() != new.Spec.Mode() {
		e.add(sp.Child("completionMode"), "field is immutable")
	}
	if !jsonEqual(old.Spec.Template, new.Spec.Template) {
		e.add(sp.Child("template"), "field is immutable")
	}
}
