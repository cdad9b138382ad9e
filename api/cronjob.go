package api

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ConcurrencyPolicy says what a CronJob does when a run is due while an
// earlier one is still active.
type ConcurrencyPolicy string

// Concurrency policies.
const (
	// AllowConcurrent runs the new Job alongside (the default).
	AllowConcurrent ConcurrencyPolicy = "Allow"
	// ForbidConcurrent skips the new run.
	ForbidConcurrent ConcurrencyPolicy = "Forbid"
	// ReplaceConcurrent deletes the active Jobs and runs the new one.
	ReplaceConcurrent ConcurrencyPolicy = "Replace"
)

// CronJob defaults and limits, as Kubernetes'.
const (
	DefaultSuccessfulJobsHistoryLimit = int32(3)
	DefaultFailedJobsHistoryLimit     = int32(1)
	// MaxCronJobNameLen leaves room for the 11-character suffix of its
	// Jobs' names within 63.
	MaxCronJobNameLen = 52
	// AnnotationCronJobScheduledTimestamp is set on a CronJob's Jobs to the
	// time they were scheduled for (RFC 3339).
	AnnotationCronJobScheduledTimestamp = "batch.kubernetes.io/cronjob-scheduled-timestamp"
)

// CronJob creates a Job on a schedule, as Kubernetes' batch/v1 CronJob.
type CronJob struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       CronJobSpec   `json:"spec"`
	Status     CronJobStatus `json:"status,omitzero"`
}

// CronJobSpec is the desired state of a CronJob.
type CronJobSpec struct {
	// Schedule is a standard five-field cron expression ("*/5 * * * *")
	// or a descriptor (@hourly, @daily, ...).
	Schedule string `json:"schedule"`
	// TimeZone names the IANA time zone of Schedule; default the control
	// plane's local time zone.
	TimeZone *string `json:"timeZone,omitempty"`
	// StartingDeadlineSeconds: a run missed by more than this is skipped.
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// ConcurrencyPolicy is Allow (default), Forbid or Replace.
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
	// Suspend stops new runs (active ones go on); default false.
	Suspend *bool `json:"suspend,omitempty"`
	// JobTemplate is the Job each run creates.
	JobTemplate JobTemplateSpec `json:"jobTemplate"`
	// SuccessfulJobsHistoryLimit and FailedJobsHistoryLimit are how many
	// finished Jobs are kept; defaults 3 and 1.
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32 `json:"failedJobsHistoryLimit,omitempty"`
}

// JobTemplateSpec is the Job a CronJob creates: metadata and spec.
type JobTemplateSpec struct {
	ObjectMeta `json:"metadata,omitzero"`
	Spec       JobSpec `json:"spec"`
}

// CronJobStatus is the observed state of a CronJob, written by its
// controller.
type CronJobStatus struct {
	// Active are its Jobs not yet finished.
	Active []ObjectReference `json:"active,omitempty"`
	// LastScheduleTime is the time the last Job was scheduled for.
	LastScheduleTime *time.Time `json:"lastScheduleTime,omitempty"`
	// LastSuccessfulTime is when its last Job completed.
	LastSuccessfulTime *time.Time `json:"lastSuccessfulTime,omitempty"`
}

var cronJobKind = &Kind{Name: "CronJob", Plural: "cronjobs", Short: []string{"cj", "cronjob"}, Namespaced: true, APIVersions: []string{BatchVersion, "kyb/v1"}, New: func() Object { return &CronJob{} }}

// CronSchedule parses a CronJob's schedule in its time zone, as Kubernetes
// does (robfig/cron's standard parser: five fields or a descriptor).
func (s *CronJobSpec) CronSchedule() (cron.Schedule, *time.Location, error) {
	loc := time.Local
	if s.TimeZone != nil {
		l, err := time.LoadLocation(*s.TimeZone)
		if err != nil {
			return nil, nil, err
		}
		loc = l
	}
	sched, err := cron.ParseStandard(s.Schedule)
	if err != nil {
		return nil, nil, err
	}
	return sched, loc, nil
}

func defaultCronJob(cj *CronJob) {
	s := &cj.Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = AllowConcurrent
	}
	if s.Suspend == nil {
		s.Suspend = ptrTo(false)
	}
	if s.SuccessfulJobsHistoryLimit == nil {
		s.SuccessfulJobsHistoryLimit = ptrTo(DefaultSuccessfulJobsHistoryLimit)
	}
	if s.FailedJobsHistoryLimit == nil {
		s.FailedJobsHistoryLimit = ptrTo(DefaultFailedJobsHistoryLimit)
	}
	defaultJobSpec(&s.JobTemplate.Spec)
}

func validateCronJob(e *errs, cj *CronJob) {
	s := &cj.Spec
	sp := field.NewPath("spec")
	if len(cj.Name) > MaxCronJobNameLen {
		e.add(field.NewPath("metadata", "name"), "must be no more than %d characters (its Jobs' names add 11)", MaxCronJobNameLen)
	}
	switch {
	case strings.TrimSpace(s.Schedule) == "":
		e.required(sp.Child("schedule"))
	case strings.Contains(s.Schedule, "TZ") && s.TimeZone != nil:
		e.add(sp.Child("schedule"), "cannot use both timeZone field and TZ or CRON_TZ in schedule")
	default:
		if _, err := cron.ParseStandard(s.Schedule); err != nil {
			e.add(sp.Child("schedule"), "invalid schedule %q: %v", s.Schedule, err)
		}
	}
	if s.TimeZone != nil {
		if _, err := time.LoadLocation(*s.TimeZone); err != nil || *s.TimeZone == "" || strings.EqualFold(*s.TimeZone, "local") {
			e.add(sp.Child("timeZone"), "unknown time zone %q", *s.TimeZone)
		}
	}
	if s.StartingDeadlineSeconds != nil && *s.StartingDeadlineSeconds < 0 {
		e.add(sp.Child("startingDeadlineSeconds"), "must be greater than or equal to 0 (got %d)", *s.StartingDeadlineSeconds)
	}
	switch s.ConcurrencyPolicy {
	case "", AllowConcurrent, ForbidConcurrent, ReplaceConcurrent:
	default:
		e.unsupported(sp.Child("concurrencyPolicy"), string(s.ConcurrencyPolicy), string(AllowConcurrent), string(ForbidConcurrent), string(ReplaceConcurrent))
	}
	for _, l := range []struct {
		name string
		v    *int32
	}{{"successfulJobsHistoryLimit", s.SuccessfulJobsHistoryLimit}, {"failedJobsHistoryLimit", s.FailedJobsHistoryLimit}} {
		if l.v != nil && *l.v < 0 {
			e.add(sp.Child(l.name), "must be greater than or equal to 0 (got %d)", *l.v)
		}
	}
	jp := sp.Child("jobTemplate")
	validateLabels(e, s.JobTemplate.Labels, jp.Child("metadata", "labels"))
	validateJobSpec(e, &s.JobTemplate.Spec, jp.Child("spec"))
}
