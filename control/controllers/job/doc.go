// Package job is the Job controller: it runs a Job's pods until enough of
// them succeeded, as Kubernetes' job controller does, on the controller
// framework (control/controllers/framework).
//
// For each Job it reads the Job and its pods from the shared informers
// (pods with a controlling ownerReference to the Job's uid that match its
// selector) and, level-triggered:
//
//   - generates the selector (the Job's uid under
//     batch.kubernetes.io/controller-uid) and the pod labels, once, unless
//     spec.manualSelector is true;
//   - fails the Job (condition Failed) with reason BackoffLimitExceeded when
//     more pods failed than spec.backoffLimit (for restartPolicy OnFailure,
//     when the restarts of its running pods reach it), or DeadlineExceeded
//     when it ran longer than spec.activeDeadlineSeconds; its running pods
//     are stopped;
//   - completes it (condition Complete, completionTime) when spec.completions
//     pods succeeded (for an Indexed Job: one pod of every index from 0 to
//     completions-1; without completions: one pod succeeded and none runs);
//   - otherwise keeps min(parallelism, completions - succeeded) pods
//     active, never more: it creates pods (named <job>-<5 random>, or
//     <job>-<index>-<5 random>; an Indexed pod gets its index as the
//     annotation and label batch.kubernetes.io/job-completion-index and as
//     JOB_COMPLETION_INDEX in every container's env) and deletes extras.
//     After failures, new pods wait an exponential back-off (10 s doubling
//     to 6 min by default, as Kubernetes);
//   - deletes a finished Job and its pods ttlSecondsAfterFinished after it
//     finished (what Kubernetes' TTL-after-finished controller does).
//
// Pods it creates are checked against the Pod Security level of their
// namespace first, as the apiserver checks pods applied by users; a
// violation is a FailedCreate event and no pod. Pods just created count as
// active until the pod informer shows them (expectations), so a lagging
// cache never makes it create more than parallelism pods.
//
// It records events (SuccessfulCreate, SuccessfulDelete, FailedCreate,
// Completed, BackoffLimitExceeded, DeadlineExceeded) through a
// record.EventRecorder. Cascading deletion of a deleted Job's pods is the
// garbage collector's (they carry an ownerReference to it).
package job
