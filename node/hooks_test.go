package node

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

func execHook(cmd ...string) *api.LifecycleHandler {
	return &api.LifecycleHandler{Exec: &api.ExecAction{Command: cmd}}
}

// callIndex is the index of the first fake runtime call with that prefix
// and containing s, or -1.
func callIndex(calls []string, prefix, s string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) && strings.Contains(c, s) })
}

// A postStart hook runs right after the container started; one that fails
// records FailedPostStartHook and kills the container, which restarts;
// once the hook passes the container keeps running.
func TestPostStartHook(t *testing.T) {
	h := probeHarness(t)
	events := h.watchEvents("poststart")
	p := h.cp.assign(probePod("poststart", func(c *api.Container) {
		c.Lifecycle = &api.Lifecycle{PostStart: execHook("cat", "/data/ready")}
	}))
	testutil.Eventually(t, 10*time.Second, func() error {
		if !events.find(runtimes.ReasonFailedPostStartHook, "PostStartHook failed") {
			return fmt.Errorf("no FailedPostStartHook event")
		}
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if cs.RestartCount < 1 {
			return fmt.Errorf("restart count %d, want the killed container restarted", cs.RestartCount)
		}
		return nil
	})
	h.dataFile(p.UID, "ready", "yes")
	testutil.Eventually(t, 20*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if cs.State.Running == nil {
			return fmt.Errorf("state %+v, want running once the hook passes", cs.State)
		}
		return nil
	})
}

// A preStop hook runs before the stop signal when a pod is deleted; one
// that fails records FailedPreStopHook and the container is stopped anyway.
func TestPreStopHook(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook *api.LifecycleHandler
		fail bool
	}{
		{"succeeds", execHook("exit", "0"), false},
		{"fails", execHook("cat", "/data/missing"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := probeHarness(t)
			name := "prestop-" + tc.name
			events := h.watchEvents(name)
			p := h.cp.assign(probePod(name, func(c *api.Container) { c.Lifecycle = &api.Lifecycle{PreStop: tc.hook} }))
			h.cp.waitPhase(t, p.UID, api.PodRunning)
			h.cp.markDeleted(p.UID, ptr(int64(5)))
			testutil.Eventually(t, 10*time.Second, func() error {
				if u := h.cp.last(p.UID); u == nil || !u.Finalized {
					return fmt.Errorf("not finalized")
				}
				return nil
			})
			calls := h.fake.Calls()
			hook := callIndex(calls, "ExecSync ", strings.Join(tc.hook.Exec.Command, " "))
			stop := callIndex(calls, "StopContainer", "")
			if hook < 0 || stop < 0 || hook > stop {
				t.Errorf("preStop hook call at %d, stop at %d: want the hook first; calls %q", hook, stop, calls)
			}
			if got := events.find(runtimes.ReasonFailedPreStopHook, "PreStopHook failed"); got != tc.fail {
				t.Errorf("FailedPreStopHook event %v, want %v", got, tc.fail)
			}
		})
	}
}

// A preStop hook that outlives the grace period is cut short: the pod is
// still stopped within about its grace, and the failure is recorded.
func TestPreStopHookBoundedByGrace(t *testing.T) {
	h := probeHarness(t)
	events := h.watchEvents("prestop-slow")
	p := h.cp.assign(probePod("prestop-slow", func(c *api.Container) {
		c.Lifecycle = &api.Lifecycle{PreStop: execHook("sleep", "1h")}
	}))
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	h.cp.markDeleted(p.UID, ptr(int64(1)))
	testutil.Eventually(t, 10*time.Second, func() error {
		if u := h.cp.last(p.UID); u == nil || !u.Finalized {
			return fmt.Errorf("not finalized")
		}
		if !events.find(runtimes.ReasonFailedPreStopHook, "grace period") {
			return fmt.Errorf("no FailedPreStopHook event naming the grace period")
		}
		return nil
	})
}
