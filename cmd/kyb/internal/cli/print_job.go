package cli

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kybernetes/kybernetes/api"
)

// jobColumns are the columns of `kyb get jobs`, as kubectl's.
func jobColumns(wide bool) []string {
	c := []string{"NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"}
	if wide {
		c = append(c, "CONTAINERS", "IMAGES", "SELECTOR")
	}
	return c
}

// jobRow is a Job's row, as kubectl prints it: STATUS from its conditions,
// COMPLETIONS succeeded/completions ("N/1 of P" for a work queue with
// parallelism P), DURATION from startTime to completionTime (or now).
func (p *printer) jobRow(j *api.Job) []string {
	var completions string
	switch {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1:
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}
	var dur string
	switch st := j.Status; {
	case st.StartTime == nil:
	case st.CompletionTime == nil:
		dur = duration.HumanDuration(p.now.Sub(*st.StartTime))
	default:
		dur = duration.HumanDuration(st.CompletionTime.Sub(*st.StartTime))
	}
	row := []string{j.Name, jobStatusText(j), completions, dur, p.age(j.CreationTimestamp)}
	if p.format == "wide" {
		var names, images []string
		for _, c := range j.Spec.Template.Spec.Containers {
			names = append(names, c.Name)
			images = append(images, c.Image)
		}
		row = append(row, strings.Join(names, ","), strings.Join(images, ","), orNone(selectorText(j.Spec.Selector)))
	}
	return row
}

// jobStatusText is the STATUS column of a Job, as kubectl's.
func jobStatusText(j *api.Job) string {
	has := func(typ string) bool {
		c := j.Status.Condition(typ)
		return c != nil && c.Status == api.ConditionTrue
	}
	switch {
	case has(api.JobComplete):
		return "Complete"
	case has(api.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(api.JobSuspended):
		return "Suspended"
	}
	return "Running"
}

// selectorText writes a label selector as kubectl does (k=v,k in (a,b)).
func selectorText(s *api.LabelSelector) string {
	if s == nil {
		return ""
	}
	var parts []string
	for k, v := range s.MatchLabels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	for _, e := range s.MatchExpressions {
		switch e.Operator {
		case api.LabelSelectorOpIn:
			parts = append(parts, e.Key+" in ("+strings.Join(e.Values, ",")+")")
		case api.LabelSelectorOpNotIn:
			parts = append(parts, e.Key+" notin ("+strings.Join(e.Values, ",")+")")
		case api.LabelSelectorOpExists:
			parts = append(parts, e.Key)
		case api.LabelSelectorOpDoesNotExist:
			parts = append(parts, "!"+e.Key)
		}
	}
	return strings.Join(parts, ",")
}

// cronJobColumns are the columns of `kyb get cronjobs`, as kubectl's.
func cronJobColumns(wide bool) []string {
	c := []string{"NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"}
	if wide {
		c = append(c, "CONTAINERS", "IMAGES", "SELECTOR")
	}
	return c
}

// cronJobRow is a CronJob's row, as kubectl prints it.
func (p *printer) cronJobRow(cj *api.CronJob) []string {
	tz := "<none>"
	if cj.Spec.TimeZone != nil {
		tz = *cj.Spec.TimeZone
	}
	last := "<none>"
	if t := cj.Status.LastScheduleTime; t != nil {
		last = p.age(*t)
	}
	suspend := "False"
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		suspend = "True"
	}
	row := []string{cj.Name, cj.Spec.Schedule, tz, suspend, fmt.Sprint(len(cj.Status.Active)), last, p.age(cj.CreationTimestamp)}
	if p.format == "wide" {
		var names, images []string
		for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
			names = append(names, c.Name)
			images = append(images, c.Image)
		}
		row = append(row, strings.Join(names, ","), strings.Join(images, ","), orNone(selectorText(cj.Spec.JobTemplate.Spec.Selector)))
	}
	return row
}
