package scheduler

import "github.com/kybernetes/kybernetes/internal/metrics"

// The scheduler's Prometheus series (internal/metrics), resolved once.
var (
	metricScheduled     = metrics.ScheduleAttempts.WithLabelValues("scheduled")
	metricUnschedulable = metrics.ScheduleAttempts.WithLabelValues("unschedulable")
	metricBindError     = metrics.ScheduleAttempts.WithLabelValues("error")
	metricActive        = metrics.PendingPods.WithLabelValues("active")
	metricParked        = metrics.PendingPods.WithLabelValues("unschedulable")
)

// observeQueue sets the pending pods gauges from the loop's queue (an upper
// bound: superseded entries count until popped) and parked pods; loop only.
func (c *core) observeQueue() {
	metricActive.Set(float64(len(c.queue) - c.qhead))
	metricParked.Set(float64(len(c.parked)))
}
