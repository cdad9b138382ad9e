package node

import (
	"slices"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// TestPlan is the planner's table: what the pod worker does for each
// state it can observe.
func TestPlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Second), now.Add(-time.Second)
	always, onFailure, never := desiredPod{restartPolicy: api.RestartPolicyAlways}, desiredPod{restartPolicy: api.RestartPolicyOnFailure}, desiredPod{restartPolicy: api.RestartPolicyNever}
	fresh := func(name string) observedCtr { return observedCtr{name: name} }
	pulled := func(name string) observedCtr { return observedCtr{name: name, imageOK: true} }
	running := func(name string) observedCtr { return observedCtr{name: name, imageOK: true, running: true} }
	exited := func(name string, code int32, until time.Time) observedCtr {
		return observedCtr{name: name, imageOK: true, exited: true, exitCode: code, crashUntil: until, crashDelay: 20 * time.Millisecond}
	}
	pod := func(inits []observedCtr, ctrs ...observedCtr) observedPod {
		return observedPod{now: now, name: "web", sandbox: true, inits: inits, ctrs: ctrs}
	}
	for _, tc := range []struct {
		name string
		d    desiredPod
		o    observedPod
		want []string
	}{
		{"no sandbox: create it first", always, observedPod{now: now, ctrs: []observedCtr{fresh("a")}}, []string{"CreateSandbox"}},
		{"sandbox backing off: nothing", always, observedPod{now: now, sandboxUntil: later, ctrs: []observedCtr{fresh("a")}}, nil},
		{"sandbox back-off over: create", always, observedPod{now: now, sandboxUntil: earlier, ctrs: []observedCtr{fresh("a")}}, []string{"CreateSandbox"}},
		{"new container: pull then start", always, pod(nil, fresh("a")), []string{"Pull a", "Start a"}},
		{"image present: start", always, pod(nil, pulled("a")), []string{"Start a"}},
		{"pull backing off: nothing", always, pod(nil, observedCtr{name: "a", pullUntil: later}), nil},
		{"pull back-off over: pull again", always, pod(nil, observedCtr{name: "a", pullUntil: earlier}), []string{"Pull a", "Start a"}},
		{"running and healthy: nothing", always, pod(nil, running("a")), nil},
		{"liveness failed: kill", always, pod(nil, observedCtr{name: "a", imageOK: true, running: true, unhealthy: "Liveness probe failed: exit 1"}), []string{"Kill a (Unhealthy)"}},
		{"startup failed under Never: kill all the same", never, pod(nil, observedCtr{name: "a", imageOK: true, running: true, unhealthy: "Startup probe failed: x"}), []string{"Kill a (Unhealthy)"}},
		{"crashed, in back-off: CrashLoopBackOff", always, pod(nil, exited("a", 1, later)), []string{"BackOff a (CrashLoopBackOff)"}},
		{"crashed, back-off over: restart", always, pod(nil, exited("a", 1, earlier)), []string{"Start a"}},
		{"killed by liveness (137), back-off over: restart", always, pod(nil, exited("a", 137, earlier)), []string{"Start a"}},
		{"completed under Always: restart", always, pod(nil, exited("a", 0, earlier)), []string{"Start a"}},
		{"completed under OnFailure: done", onFailure, pod(nil, exited("a", 0, earlier)), nil},
		{"failed under OnFailure: restart", onFailure, pod(nil, exited("a", 2, earlier)), []string{"Start a"}},
		{"failed under Never: done", never, pod(nil, exited("a", 2, earlier)), nil},
		{"killed by liveness under Never: not restarted", never, pod(nil, exited("a", 137, earlier)), nil},
		{"image changed while running (respec): start at once, whatever the policy", never, pod(nil, observedCtr{name: "b", exited: true, exitCode: 137, respec: true, crashUntil: later}), []string{"Pull b", "Start b"}},
		{"start failed, backing off: nothing", always, pod(nil, observedCtr{name: "a", imageOK: true, startFailed: true, crashUntil: later}), nil},
		{"start failed, back-off over: start", always, pod(nil, observedCtr{name: "a", imageOK: true, startFailed: true, crashUntil: earlier}), []string{"Start a"}},
		{"two containers: each its own", always, pod(nil, running("a"), exited("b", 1, later), fresh("c")), []string{"BackOff b (CrashLoopBackOff)", "Pull c", "Start c"}},
		{"init first, main containers wait", always, pod([]observedCtr{fresh("i1"), fresh("i2")}, fresh("a")), []string{"Pull i1", "Start i1"}},
		{"init running: nothing else", always, pod([]observedCtr{running("i1"), fresh("i2")}, fresh("a")), nil},
		{"first init done: the second", always, pod([]observedCtr{exited("i1", 0, later), fresh("i2")}, fresh("a")), []string{"Pull i2", "Start i2"}},
		{"inits done: main containers", always, pod([]observedCtr{exited("i1", 0, later), exited("i2", 0, later)}, fresh("a"), pulled("b")), []string{"Pull a", "Start a", "Start b"}},
		{"init failed under Never: the pod fails", never, pod([]observedCtr{exited("i1", 1, earlier)}, fresh("a")), []string{"InitFailed i1 (InitContainerFailed)"}},
		{"init failed under Always: restarted after back-off", always, pod([]observedCtr{exited("i1", 1, later)}, fresh("a")), []string{"BackOff i1 (CrashLoopBackOff)"}},
		{"init failed under OnFailure, back-off over: restart", onFailure, pod([]observedCtr{exited("i1", 1, earlier)}, fresh("a")), []string{"Start i1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range plan(tc.d, tc.o) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPlanMessages: what a back-off and a kill carry into the container's
// status.
func TestPlanMessages(t *testing.T) {
	now := time.Now()
	o := observedPod{now: now, name: "web", sandbox: true, ctrs: []observedCtr{
		{name: "a", imageOK: true, exited: true, exitCode: 1, crashUntil: now.Add(time.Second), crashDelay: 40 * time.Second},
		{name: "b", imageOK: true, running: true, unhealthy: "Liveness probe failed: HTTP probe failed with statuscode: 500"},
	}}
	acts := plan(desiredPod{restartPolicy: api.RestartPolicyAlways}, o)
	if len(acts) != 2 {
		t.Fatalf("plan = %v", acts)
	}
	if want := "back-off 40s restarting failed container=a pod=web"; acts[0].message != want {
		t.Errorf("back-off message %q, want %q", acts[0].message, want)
	}
	if acts[1].message != o.ctrs[1].unhealthy {
		t.Errorf("kill message %q, want the probe's failure %q", acts[1].message, o.ctrs[1].unhealthy)
	}
}
