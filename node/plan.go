package node

import (
	"fmt"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// The pod worker is split in two: plan, a pure function from what the pod
// should be and what the worker observed to a list of actions, and the
// executor (podWorker.execute), which performs them against the runtime
// and records what happened. Probes and restarts meet in plan: a container
// a liveness or startup probe found unhealthy is killed, and an exited one
// is restarted as its pod's restart policy and its back-off say.

// actionKind is what one action asks the executor to do.
type actionKind int

const (
	// actCreateSandbox creates the pod's sandbox.
	actCreateSandbox actionKind = iota + 1
	// actPull makes the container's image present.
	actPull
	// actStart creates and starts the container's next attempt (a restart
	// when it ran before). The executor skips it when the image is not
	// present (the pull before it failed).
	actStart
	// actBackOff records that the exited container waits for its restart
	// back-off (CrashLoopBackOff).
	actBackOff
	// actKill stops a running container that must not go on running (a
	// failed liveness or startup probe), with reason and message.
	actKill
	// actInitFailed fails the pod: an init container failed and the pod's
	// restart policy is Never.
	actInitFailed
)

func (k actionKind) String() string {
	switch k {
	case actCreateSandbox:
		return "CreateSandbox"
	case actPull:
		return "Pull"
	case actStart:
		return "Start"
	case actBackOff:
		return "BackOff"
	case actKill:
		return "Kill"
	case actInitFailed:
		return "InitFailed"
	}
	return fmt.Sprintf("actionKind(%d)", int(k))
}

// action is one step of a plan.
type action struct {
	kind      actionKind
	container string
	reason    string
	message   string
}

func (a action) String() string {
	s := a.kind.String()
	if a.container != "" {
		s += " " + a.container
	}
	if a.reason != "" {
		s += " (" + a.reason + ")"
	}
	return s
}

// desiredPod is what plan needs of the pod's spec.
type desiredPod struct {
	restartPolicy api.RestartPolicy
}

// observedCtr is the worker's view of one container when it plans.
type observedCtr struct {
	name    string
	running bool
	// exited is set when the current attempt ended, with its exit code.
	exited   bool
	exitCode int32
	// respec: stopped because its spec changed; it starts again at once.
	respec  bool
	imageOK bool
	// pullUntil and crashUntil are the ends of the pull and restart
	// back-offs; crashDelay is the current restart back-off.
	pullUntil  time.Time
	crashUntil time.Time
	crashDelay time.Duration
	// startFailed: the last create or start failed (it backs off until
	// crashUntil).
	startFailed bool
	// unhealthy is why a liveness or startup probe failed, "" when none
	// did: a running container that is unhealthy is killed.
	unhealthy string
}

// observedPod is the worker's view of the pod when it plans.
type observedPod struct {
	now          time.Time
	name         string
	sandbox      bool
	sandboxUntil time.Time
	inits, ctrs  []observedCtr
}

// plan returns the actions that move the pod one step towards d from o.
// It is pure: same input, same actions. Init containers run one at a time,
// in order, each to success before the next; the main containers run once
// every init container succeeded.
func plan(d desiredPod, o observedPod) []action {
	var acts []action
	if !o.sandbox {
		if !o.now.Before(o.sandboxUntil) {
			acts = append(acts, action{kind: actCreateSandbox})
		}
		return acts
	}
	for _, c := range o.inits {
		if c.exited && c.exitCode == 0 && !c.respec {
			continue
		}
		if c.exited && !c.respec && d.restartPolicy == api.RestartPolicyNever {
			return append(acts, action{kind: actInitFailed, container: c.name, reason: "InitContainerFailed",
				message: fmt.Sprintf("init container %s exited with code %d and restartPolicy is Never", c.name, c.exitCode)})
		}
		return append(acts, planContainer(d, o, c, true)...)
	}
	for _, c := range o.ctrs {
		acts = append(acts, planContainer(d, o, c, false)...)
	}
	return acts
}

// planContainer is what one container needs: nothing while it runs
// healthy, a kill when a probe found it unhealthy, a pull and a start when
// it has not run or may restart, a back-off while it may not yet.
func planContainer(d desiredPod, o observedPod, c observedCtr, init bool) []action {
	if c.running {
		if c.unhealthy != "" {
			return []action{{kind: actKill, container: c.name, reason: runtimes.ReasonUnhealthy, message: c.unhealthy}}
		}
		return nil
	}
	if c.exited && !c.respec {
		if !shouldRestart(d.restartPolicy, init, c.exitCode) {
			return nil
		}
		if o.now.Before(c.crashUntil) {
			return []action{{kind: actBackOff, container: c.name, reason: runtimes.ReasonCrashLoopBackOff,
				message: fmt.Sprintf("back-off %v restarting failed container=%s pod=%s", c.crashDelay, c.name, o.name)}}
		}
	} else if c.startFailed && o.now.Before(c.crashUntil) {
		return nil // create or start failed; back off
	}
	var acts []action
	if !c.imageOK {
		if o.now.Before(c.pullUntil) {
			return nil
		}
		acts = append(acts, action{kind: actPull, container: c.name})
	}
	return append(acts, action{kind: actStart, container: c.name})
}
