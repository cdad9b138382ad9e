package scheduler

import (
	"fmt"

	"github.com/kybernetes/kybernetes/internal/record"
)

// Strategy chooses how feasible nodes are ranked.
type Strategy string

// Scoring strategies.
const (
	// BinPack prefers the fullest node that fits (Nomad's default, Kubernetes'
	// MostAllocated), leaving whole nodes free for big pods. The default.
	BinPack Strategy = "BinPack"
	// Spread prefers the emptiest node (Kubernetes' LeastAllocated).
	Spread Strategy = "Spread"
)

// DefaultSchedulerName is the spec.schedulerName the scheduler serves by
// default; pods with an empty schedulerName are served too.
const DefaultSchedulerName = "default-scheduler"

// Config configures a Scheduler. The zero value is valid: bin-pack,
// adaptive sampling, DefaultSchedulerName, 128 bind workers.
type Config struct {
	// SchedulerName is the spec.schedulerName this scheduler serves, besides
	// the empty one. Default DefaultSchedulerName.
	SchedulerName string
	// Strategy ranks feasible nodes: BinPack (default) or Spread.
	Strategy Strategy
	// PercentageOfNodesToScore bounds how many feasible nodes are scored per
	// pod, as in Kubernetes: once that share of the nodes (and at least 100)
	// is found feasible, the search stops; the next pod starts where the last
	// search ended. 0 is Kubernetes' adaptive default (50% minus 1% per 125
	// nodes, at least 5%); 100 scores every node.
	PercentageOfNodesToScore int
	// BindWorkers is how many bind and status writes run at once while
	// decisions continue (and decisions may run up to twice that many
	// writes ahead); default 128. The store binder groups concurrent writes
	// into pipelined batches, so many workers cost few round trips.
	BindWorkers int
	// Recorder records the scheduler's events about pods: Scheduled
	// (naming the node) when a bind succeeds, and FailedScheduling (with
	// the "0/3 nodes are available: ..." message) on every attempt that
	// finds no node, folded into one event while the pod stays pending.
	// Nil records nothing.
	Recorder record.EventRecorder
}

func (c Config) withDefaults() (Config, error) {
	if c.SchedulerName == "" {
		c.SchedulerName = DefaultSchedulerName
	}
	if c.Recorder == nil {
		c.Recorder = record.Nop{}
	}
	switch c.Strategy {
	case "":
		c.Strategy = BinPack
	case BinPack, Spread:
	default:
		return c, fmt.Errorf("scheduler config: strategy %q: want %q or %q", c.Strategy, BinPack, Spread)
	}
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		return c, fmt.Errorf("scheduler config: percentageOfNodesToScore %d: want 0 to 100", c.PercentageOfNodesToScore)
	}
	if c.BindWorkers < 0 {
		return c, fmt.Errorf("scheduler config: bindWorkers %d: must not be negative", c.BindWorkers)
	}
	if c.BindWorkers == 0 {
		c.BindWorkers = 128
	}
	return c, nil
}

// Kubernetes' bounds for the sampled search (pkg/scheduler/schedule_one.go).
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// numFeasibleNodesToFind returns how many feasible nodes to find before
// scoring, out of all nodes, exactly as kube-scheduler does.
func numFeasibleNodesToFind(pct, all int) int {
	if all < minFeasibleNodesToFind || pct >= 100 {
		return all
	}
	adaptive := pct
	if adaptive == 0 {
		adaptive = 50 - all/125
		if adaptive < minFeasibleNodesPercentageToFind {
			adaptive = minFeasibleNodesPercentageToFind
		}
	}
	n := all * adaptive / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}
