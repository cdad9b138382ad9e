// Package retry holds the project's one back-off type and its retry
// helpers: Backoff (exponential, capped, jittered, with an optional number
// of steps), OnError (retry a function while its error is retriable) and
// RetryOnConflict (retry a read-modify-write while the store answers 409
// Conflict), in the shape of client-go's k8s.io/client-go/util/retry.
//
// Every compare-and-set loop of the control plane goes through
// RetryOnConflict or OnError, and every component that restarts a failed
// watch waits with a Backoff, so one set of numbers decides how hard the
// cluster retries.
package retry
