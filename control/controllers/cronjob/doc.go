// Package cronjob is the CronJob controller: it creates a CronJob's Jobs on
// its schedule, as Kubernetes' cronjob controller (v2) does, on the
// controller framework (control/controllers/framework).
//
// For each CronJob, level-triggered: it reads its Jobs (controlling
// ownerReference to its uid) from the shared Job informer, records the
// unfinished ones in status.active and the last completion in
// status.lastSuccessfulTime, deletes finished Jobs (and their pods) beyond
// successfulJobsHistoryLimit and failedJobsHistoryLimit (oldest first),
// and, unless suspended, creates the Job of the most recent scheduled time
// since status.lastScheduleTime (or its creation) that is not older than
// startingDeadlineSeconds — one Job, however many runs were missed, as
// Kubernetes. concurrencyPolicy Forbid skips a run while a Job is active;
// Replace deletes the active Jobs first. A Job's name is
// <cronjob>-<scheduled time in Unix minutes>, so a controller that restarts
// (or a second one) can never create a run twice: the store refuses the
// second create. It requeues itself for the next scheduled time
// (Result.RequeueAfter), never polling.
package cronjob
