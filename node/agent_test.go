package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

func TestPodLifecycle(t *testing.T) {
	h := newHarness(t)
	h.start()
	cases := []struct {
		name   string
		pod    *api.Pod
		phase  api.PodPhase
		reason string // pod status reason
		check  func(t *testing.T, u *api.PodStatusUpdate)
	}{
		{name: "never exit 0 succeeds", pod: mkpod("ok", api.RestartPolicyNever, "fake://exit/0"), phase: api.PodSucceeded,
			check: func(t *testing.T, u *api.PodStatusUpdate) {
				term := u.Status.ContainerStatuses[0].State.Terminated
				if term == nil || term.ExitCode != 0 || term.Reason != runtimes.ReasonCompleted {
					t.Errorf("terminated = %+v, want exit 0 Completed", term)
				}
				if c := u.Status.Condition(api.PodReady); c == nil || c.Status != api.ConditionFalse || c.Reason != "PodCompleted" {
					t.Errorf("Ready = %+v, want False PodCompleted", c)
				}
			}},
		{name: "never exit 3 fails", pod: mkpod("fail", api.RestartPolicyNever, "fake://exit/3"), phase: api.PodFailed,
			check: func(t *testing.T, u *api.PodStatusUpdate) {
				term := u.Status.ContainerStatuses[0].State.Terminated
				if term == nil || term.ExitCode != 3 || term.Reason != runtimes.ReasonFailed {
					t.Errorf("terminated = %+v, want exit 3 Error", term)
				}
				if u.Status.ContainerStatuses[0].RestartCount != 0 {
					t.Errorf("restartCount = %d, want 0", u.Status.ContainerStatuses[0].RestartCount)
				}
			}},
		{name: "never one of two fails", pod: mkpod("mixed", api.RestartPolicyNever, "fake://exit/0", "fake://exit/1"), phase: api.PodFailed},
		{name: "oom killed", pod: mkpod("oom", api.RestartPolicyNever, "fake://oom"), phase: api.PodFailed,
			check: func(t *testing.T, u *api.PodStatusUpdate) {
				if term := u.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != runtimes.ReasonOOMKilled {
					t.Errorf("terminated = %+v, want OOMKilled", term)
				}
			}},
		{name: "onfailure exit 0 succeeds", pod: mkpod("onf-ok", api.RestartPolicyOnFailure, "fake://exit/0"), phase: api.PodSucceeded},
		{name: "running", pod: mkpod("web", api.RestartPolicyAlways, "fake://run", "fake://run"), phase: api.PodRunning,
			check: func(t *testing.T, u *api.PodStatusUpdate) {
				for _, typ := range []string{api.PodInitialized, api.ContainersReady, api.PodReady} {
					if c := u.Status.Condition(typ); c == nil || c.Status != api.ConditionTrue || c.LastTransitionTime.IsZero() {
						t.Errorf("condition %s = %+v, want True with a transition time", typ, c)
					}
				}
				if u.Status.PodIP == "" || len(u.Status.PodIPs) != 1 || u.Status.HostIP == "" || u.Status.StartTime == nil {
					t.Errorf("podIP %q podIPs %v hostIP %q startTime %v: want all set", u.Status.PodIP, u.Status.PodIPs, u.Status.HostIP, u.Status.StartTime)
				}
				for _, cs := range u.Status.ContainerStatuses {
					if cs.State.Running == nil || !cs.Ready || cs.ContainerID == "" || cs.ImageID == "" {
						t.Errorf("container %s = %+v, want running, ready, with IDs", cs.Name, cs)
					}
				}
			}},
		{name: "init container runs first", pod: func() *api.Pod {
			p := mkpod("init-ok", api.RestartPolicyAlways, "fake://run")
			p.Spec.InitContainers = []api.Container{{Name: "setup", Image: "fake://exit/0"}}
			return p
		}(), phase: api.PodRunning,
			check: func(t *testing.T, u *api.PodStatusUpdate) {
				ics := u.Status.InitContainerStatuses
				if len(ics) != 1 || ics[0].State.Terminated == nil || ics[0].State.Terminated.Reason != runtimes.ReasonCompleted {
					t.Errorf("init container statuses %s, want one terminated Completed", describe(ics))
				}
				if c := u.Status.Condition(api.PodInitialized); c == nil || c.Status != api.ConditionTrue {
					t.Errorf("Initialized = %+v, want True", c)
				}
			}},
		{name: "failed init container fails the pod", pod: func() *api.Pod {
			p := mkpod("init-fail", api.RestartPolicyNever, "fake://run")
			p.Spec.InitContainers = []api.Container{{Name: "setup", Image: "fake://exit/4"}}
			return p
		}(), phase: api.PodFailed, reason: "InitContainerFailed",
			check: func(t *testing.T, u *api.PodStatusUpdate) {
				if w := u.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != runtimes.ReasonPodInitializing {
					t.Errorf("main container %s, want waiting PodInitializing (never started)", describe(u.Status.ContainerStatuses))
				}
				if c := u.Status.Condition(api.PodInitialized); c == nil || c.Status != api.ConditionFalse {
					t.Errorf("Initialized = %+v, want False", c)
				}
			}},
		{name: "missing runtime fails", pod: func() *api.Pod {
			p := mkpod("wasm", api.RestartPolicyAlways, "fake://run")
			p.Spec.RuntimeClassName = ptr(api.RuntimeWasm) // the harness' node runs containers only
			return p
		}(), phase: api.PodFailed, reason: ReasonUnknownRuntime},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := h.cp.assign(tc.pod)
			u := h.cp.waitPhase(t, p.UID, tc.phase)
			if u.Status.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", u.Status.Reason, tc.reason)
			}
			if len(u.Status.ContainerStatuses) != len(tc.pod.Spec.Containers) {
				t.Errorf("%d container statuses, want %d", len(u.Status.ContainerStatuses), len(tc.pod.Spec.Containers))
			}
			if tc.check != nil {
				tc.check(t, u)
			}
			if tc.phase == api.PodSucceeded || tc.phase == api.PodFailed {
				testutil.Eventually(t, 5*time.Second, func() error {
					sbs, _ := h.fake.ListSandboxes(context.Background())
					for _, sb := range sbs {
						if sb.UID == p.UID {
							return fmt.Errorf("the sandbox of the completed pod is still there")
						}
					}
					return nil
				})
			}
		})
	}
}

func TestPendingRunningSucceededWithLogs(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.fake.SetHooks(fake.Hooks{CreateSandbox: func(ctx context.Context, cfg *runtimes.SandboxConfig) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}})
	h.start()
	p := mkpod("job", api.RestartPolicyNever, "fake://prog")
	p.Spec.Containers[0].Command = []string{"out", "hello world", "err", "oops", "sleep", "300ms", "out", "bye"}
	p = h.cp.assign(p)

	u := h.cp.waitPhase(t, p.UID, api.PodPending)
	if w := u.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != runtimes.ReasonContainerCreating {
		t.Errorf("pending container state = %+v, want waiting ContainerCreating", u.Status.ContainerStatuses[0].State)
	}
	close(release)
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	u = h.cp.waitPhase(t, p.UID, api.PodSucceeded)
	var phases []api.PodPhase
	for _, u := range h.cp.history(p.UID) {
		if len(phases) == 0 || phases[len(phases)-1] != u.Status.Phase {
			phases = append(phases, u.Status.Phase)
		}
	}
	if want := []api.PodPhase{api.PodPending, api.PodRunning, api.PodSucceeded}; !slices.Equal(phases, want) {
		t.Errorf("phases = %v, want %v", phases, want)
	}
	term := u.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.StartedAt.IsZero() || term.FinishedAt.IsZero() || term.ExitCode != 0 {
		t.Errorf("terminated = %+v, want exit 0 with start and finish", term)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		got := h.logLines("default", "job", "c0")
		want := []string{"hello world", "oops", "bye"}
		if !slices.Equal(got, want) {
			return fmt.Errorf("log lines %q, want %q", got, want)
		}
		return nil
	})
}

func TestRestartBackoff(t *testing.T) {
	cases := []struct {
		name     string
		policy   api.RestartPolicy
		image    string
		restarts bool
	}{
		{name: "always restarts a crashing container", policy: api.RestartPolicyAlways, image: "fake://exit/1", restarts: true},
		{name: "always restarts a completed container", policy: api.RestartPolicyAlways, image: "fake://exit/0", restarts: true},
		{name: "onfailure restarts a crashing container", policy: api.RestartPolicyOnFailure, image: "fake://exit/2", restarts: true},
	}
	h := newHarness(t)
	h.start()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := h.cp.assign(mkpod(strings.ReplaceAll(tc.name, " ", "-"), tc.policy, tc.image))
			testutil.Eventually(t, 10*time.Second, func() error {
				u := h.cp.last(p.UID)
				if u == nil || u.Status.ContainerStatuses[0].RestartCount < 5 {
					return fmt.Errorf("restartCount below 5: %v", u)
				}
				return nil
			})
			// Back-off messages grow: 20ms, 40ms, 80ms, then capped at 160ms.
			var delays []string
			sawLast := false
			for _, u := range h.cp.history(p.UID) {
				cs := u.Status.ContainerStatuses[0]
				if u.Status.Phase == api.PodSucceeded || u.Status.Phase == api.PodFailed {
					t.Fatalf("pod reached %s; it must keep restarting", u.Status.Phase)
				}
				if w := cs.State.Waiting; w != nil && w.Reason == runtimes.ReasonCrashLoopBackOff {
					d := strings.Fields(w.Message)[1]
					if len(delays) == 0 || delays[len(delays)-1] != d {
						delays = append(delays, d)
					}
					if cs.LastState.Terminated == nil {
						t.Errorf("CrashLoopBackOff without lastTerminationState")
					}
				}
				if cs.LastState.Terminated != nil && cs.RestartCount > 0 {
					sawLast = true
				}
			}
			// Coalesced status reports may skip a short back-off, never reorder them.
			want := []string{"20ms", "40ms", "80ms", "160ms"}
			last := -1
			for _, d := range delays {
				i := slices.Index(want, d)
				if i <= last {
					t.Errorf("back-off delays seen %v, want a growing subsequence of %v", delays, want)
					break
				}
				last = i
			}
			if len(delays) < 2 || delays[len(delays)-1] != "160ms" {
				t.Errorf("back-off delays seen %v, want growth up to the 160ms cap", delays)
			}
			if !sawLast {
				t.Errorf("no lastTerminationState after a restart")
			}
			h.cp.remove(p.UID, true)
		})
	}
}

func TestImagePullBackoff(t *testing.T) {
	h := newHarness(t)
	h.start()
	cases := []struct {
		image   string
		reasons []string
	}{
		{image: "fake://pullerror", reasons: []string{runtimes.ReasonErrImagePull, runtimes.ReasonImagePullBackOff}},
		{image: "fake://invalid", reasons: []string{"InvalidImageName"}},
	}
	for _, tc := range cases {
		t.Run(tc.image, func(t *testing.T) {
			p := h.cp.assign(mkpod("pull-"+strings.TrimPrefix(tc.image, "fake://"), api.RestartPolicyAlways, tc.image))
			testutil.Eventually(t, 10*time.Second, func() error {
				var seen []string
				for _, u := range h.cp.history(p.UID) {
					if w := u.Status.ContainerStatuses[0].State.Waiting; w != nil && w.Reason != runtimes.ReasonContainerCreating && !slices.Contains(seen, w.Reason) {
						seen = append(seen, w.Reason)
					}
					if u.Status.Phase != api.PodPending {
						return fmt.Errorf("phase %s, want Pending", u.Status.Phase)
					}
				}
				if !slices.Equal(seen, tc.reasons) {
					return fmt.Errorf("waiting reasons %v, want %v", seen, tc.reasons)
				}
				return nil
			})
		})
	}
}

func TestDeletion(t *testing.T) {
	h := newHarness(t)
	h.start()
	cases := []struct {
		name     string
		image    string
		grace    int64
		deleted  bool // DELETED assignment instead of a deletionTimestamp
		exitCode int32
	}{
		{name: "well-behaved container stops at once", image: "fake://run", grace: 30, exitCode: 0},
		{name: "hanging container is killed after the grace", image: "fake://hang", grace: 1, exitCode: 137},
		{name: "deleted object is stopped and removed", image: "fake://run", grace: 30, deleted: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mkpod(strings.ReplaceAll(tc.name, " ", "-"), api.RestartPolicyAlways, tc.image)
			p.Spec.TerminationGracePeriodSeconds = ptr(tc.grace)
			p = h.cp.assign(p)
			h.cp.waitPhase(t, p.UID, api.PodRunning)
			start := time.Now()
			if tc.deleted {
				h.cp.remove(p.UID, true)
			} else {
				h.cp.markDeleted(p.UID, nil)
			}
			testutil.Eventually(t, time.Duration(tc.grace+5)*time.Second, func() error {
				sbs, _ := h.fake.ListSandboxes(context.Background())
				for _, sb := range sbs {
					if sb.UID == p.UID {
						return fmt.Errorf("sandbox of %s still there", p.Name)
					}
				}
				if tc.deleted {
					return nil
				}
				u := h.cp.last(p.UID)
				if u == nil || !u.Finalized {
					return fmt.Errorf("not finalized")
				}
				return nil
			})
			if !tc.deleted {
				u := h.cp.last(p.UID)
				term := u.Status.ContainerStatuses[0].State.Terminated
				if term == nil || term.ExitCode != tc.exitCode {
					t.Errorf("final container state %+v, want exit code %d", u.Status.ContainerStatuses[0].State, tc.exitCode)
				}
				if tc.grace == 1 && time.Since(start) < 900*time.Millisecond {
					t.Errorf("hanging container finalized after %v, before its 1s grace", time.Since(start))
				}
			} else if u := h.cp.last(p.UID); u != nil && u.Finalized {
				t.Errorf("a pod already gone must not be reported finalized")
			}
			testutil.Eventually(t, 5*time.Second, func() error {
				if n := h.agent.PodCount(); n != 0 {
					return fmt.Errorf("%d pod workers left", n)
				}
				if _, err := os.Stat(h.podDir(p.UID)); !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("pod dir left behind: %v", err)
				}
				return nil
			})
		})
	}
}

func TestVolumesAndPorts(t *testing.T) {
	h := newHarness(t)
	h.start()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mkpod("vol", api.RestartPolicyNever, "fake://prog", "fake://run") // c1 keeps the sandbox
	p.Spec.Volumes = []api.Volume{{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}}, {Name: "host", HostPath: &api.HostPathVolumeSource{Path: host}}}
	p.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "host", MountPath: "/host"}}
	p.Spec.Containers[0].Command = []string{"cat", "/host/in.txt", "write", "/scratch/out.txt", "shared"}
	p.Spec.Containers[0].Ports = []api.ContainerPort{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81}}
	p = h.cp.assign(p)
	testutil.Eventually(t, 10*time.Second, func() error {
		u := h.cp.last(p.UID)
		if u == nil {
			return fmt.Errorf("no status")
		}
		cs := u.Status.ContainerStatuses
		if cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 0 {
			return fmt.Errorf("c0 = %+v, want exit 0", cs[0].State)
		}
		return nil
	})
	b, err := os.ReadFile(filepath.Join(h.podDir(p.UID), "volumes", "scratch", "out.txt"))
	if err != nil || string(b) != "shared" {
		t.Errorf("emptyDir file = %q, %v; want shared", b, err)
	}
	sbs, _ := h.fake.ListSandboxes(context.Background())
	var sbc *runtimes.SandboxConfig
	for _, sb := range sbs {
		if sb.UID == p.UID {
			sbc, _ = h.fake.SandboxConfig(sb.ID)
		}
	}
	if sbc == nil || len(sbc.Ports) != 1 || sbc.Ports[0].HostPort != 8080 || sbc.Ports[0].Protocol != "TCP" || sbc.PodCIDR != "10.244.0.0/24" {
		t.Errorf("sandbox config = %+v, want one TCP port mapping 8080 and the pod CIDR from register", sbc)
	}
}

func TestAgentRestartAdopts(t *testing.T) {
	h := newHarness(t)
	h.start()
	keep := h.cp.assign(mkpod("keep", api.RestartPolicyAlways, "fake://run"))
	crashy := h.cp.assign(mkpod("crashy", api.RestartPolicyAlways, "fake://run"))
	gone := h.cp.assign(mkpod("gone", api.RestartPolicyAlways, "fake://run"))
	done := h.cp.assign(mkpod("done", api.RestartPolicyNever, "fake://exit/0"))
	for _, p := range []*api.Pod{keep, crashy, gone} {
		h.cp.waitPhase(t, p.UID, api.PodRunning)
	}
	h.cp.waitPhase(t, done.UID, api.PodSucceeded)
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := h.logLines("default", "keep", "c0"); len(got) != 1 {
			return fmt.Errorf("keep logs %q, want one line", got)
		}
		return nil
	})
	h.stop()

	// While the agent is down: one pod is deleted, one is added, a stray
	// sandbox appears, and a running container of another pod dies.
	h.cp.remove(gone.UID, false)
	added := h.cp.store(mkpod("added", api.RestartPolicyAlways, "fake://run"))
	ctx := context.Background()
	stray, err := h.fake.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "stray", UID: "uid-stray"})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]*runtimes.ContainerStatus{}
	cs, _ := h.fake.ListContainers(ctx, "")
	for _, c := range cs {
		before[c.Labels[LabelPodUID]] = c
		if c.Labels[LabelPodUID] == crashy.UID {
			if err := h.fake.StopContainer(ctx, c.ID, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	startsBefore := countCalls(h.fake, "StartContainer")
	// Core subscribers see what the stream would deduplicate: nothing of
	// keep's log may be published again.
	resent, err := h.cp.nc.SubscribeSync(api.LogSubject("*", "default", "keep", "c0"))
	if err != nil {
		t.Fatal(err)
	}

	h.start()
	h.cp.waitPhase(t, added.UID, api.PodRunning)
	testutil.Eventually(t, 10*time.Second, func() error {
		u := h.cp.last(crashy.UID)
		if u == nil || u.Status.ContainerStatuses[0].RestartCount != 1 || u.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("crashy not restarted once: %v", u)
		}
		sbs, _ := h.fake.ListSandboxes(ctx)
		var uids []string
		for _, sb := range sbs {
			uids = append(uids, sb.UID)
		}
		slices.Sort(uids)
		want := []string{added.UID, crashy.UID, keep.UID} // done's was released when it completed
		slices.Sort(want)
		if !slices.Equal(uids, want) {
			return fmt.Errorf("sandboxes of %v, want %v (stray %s removed)", uids, want, stray.ID)
		}
		cs, _ := h.fake.ListContainers(ctx, "")
		if len(cs) != 3 {
			return fmt.Errorf("%d containers, want 3 (one per running pod)", len(cs))
		}
		return nil
	})
	// Only crashy and added were started again; keep runs on in the same container.
	if n := countCalls(h.fake, "StartContainer") - startsBefore; n != 2 {
		t.Errorf("%d containers started after the restart, want 2", n)
	}
	cs, _ = h.fake.ListContainers(ctx, "")
	for _, c := range cs {
		if c.Labels[LabelPodUID] == keep.UID && (c.ID != before[keep.UID].ID || c.State != runtimes.ContainerRunning) {
			t.Errorf("keep's container changed: %s %v, was %s", c.ID, c.State, before[keep.UID].ID)
		}
	}
	if u := h.cp.last(done.UID); u.Status.Phase != api.PodSucceeded {
		t.Errorf("done pod is %s after the restart, want Succeeded", u.Status.Phase)
	}
	u := h.cp.last(keep.UID)
	if u.Status.Phase != api.PodRunning || u.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("keep = %s restarts %d, want Running with 0", u.Status.Phase, u.Status.ContainerStatuses[0].RestartCount)
	}
	if _, err := os.Stat(h.podDir(gone.UID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir of the removed pod left behind: %v", err)
	}
	// The log offset survived: keep's first line was not published again.
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := h.logLines("default", "added", "c0"); len(got) != 1 {
			return fmt.Errorf("added logs %q, want one line", got)
		}
		return nil
	})
	if got := h.logLines("default", "keep", "c0"); len(got) != 1 {
		t.Errorf("keep logs after restart %q, want the one line once", got)
	}
	if n, _, _ := resent.Pending(); n != 0 {
		t.Errorf("%d lines of keep's log published again after the restart", n)
	}
	// The pod that completed before the restart keeps its reported status
	// through its deletion.
	h.cp.markDeleted(done.UID, nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		u := h.cp.last(done.UID)
		if !u.Finalized {
			return fmt.Errorf("done not finalized")
		}
		if term := u.Status.ContainerStatuses[0].State.Terminated; u.Status.Phase != api.PodSucceeded || term == nil || term.ExitCode != 0 {
			return fmt.Errorf("done finalized as %s %s, want Succeeded with its exit", u.Status.Phase, describe(u.Status.ContainerStatuses))
		}
		return nil
	})
}

func countCalls(rt *fake.Runtime, method string) int {
	n := 0
	for _, c := range rt.Calls() {
		if strings.HasPrefix(c, method+" ") {
			n++
		}
	}
	return n
}

func TestReconnect(t *testing.T) {
	h := newHarness(t)
	a := h.start()
	stay := h.cp.assign(mkpod("stay", api.RestartPolicyNever, "fake://run"))
	leave := h.cp.assign(mkpod("leave", api.RestartPolicyAlways, "fake://run"))
	h.cp.waitPhase(t, stay.UID, api.PodRunning)
	h.cp.waitPhase(t, leave.UID, api.PodRunning)
	regs, syncs, _, _ := h.cp.counts()

	// The control plane stops answering: the status change of stay (its
	// container ends) is queued, and changes to the pods reach the store
	// but not the agent.
	h.cp.pause(true)
	cs, _ := h.fake.ListContainers(context.Background(), "")
	for _, c := range cs {
		if c.Labels[LabelPodUID] == stay.UID {
			if err := h.fake.StopContainer(context.Background(), c.ID, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if a.reporter.pending() == 0 {
			return fmt.Errorf("no status queued yet")
		}
		return nil
	})
	h.cp.remove(leave.UID, false)
	join := h.cp.store(mkpod("join", api.RestartPolicyAlways, "fake://run"))
	h.cp.pause(false)

	// Drop the agent's connection; it reconnects, flushes, registers, syncs.
	id, err := h.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	h.cp.waitPhase(t, stay.UID, api.PodSucceeded)
	h.cp.waitPhase(t, join.UID, api.PodRunning)
	testutil.Eventually(t, 10*time.Second, func() error {
		r, s, _, _ := h.cp.counts()
		if r <= regs || s <= syncs {
			return fmt.Errorf("registers %d syncs %d, want more than %d and %d", r, s, regs, syncs)
		}
		sbs, _ := h.fake.ListSandboxes(context.Background())
		for _, sb := range sbs {
			if sb.UID == leave.UID {
				return fmt.Errorf("sandbox of the pod removed while disconnected is still there")
			}
		}
		return nil
	})
}

func TestRegistration(t *testing.T) {
	failing := errors.New("daemon down")
	cases := []struct {
		name      string
		infoFails map[string]bool
		want      []string // advertised runtimes
		ready     api.ConditionStatus
	}{
		{name: "both runtimes", want: []string{api.RuntimeContainerd, api.RuntimeWasm}, ready: api.ConditionTrue},
		{name: "containerd down", infoFails: map[string]bool{api.RuntimeContainerd: true}, want: []string{api.RuntimeWasm}, ready: api.ConditionTrue},
		{name: "no runtime", infoFails: map[string]bool{api.RuntimeContainerd: true, api.RuntimeWasm: true}, ready: api.ConditionFalse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.cfg.MaxWasmPods = 500
			h.cfg.Labels = map[string]string{"zone": "a"}
			for _, class := range []string{api.RuntimeContainerd, api.RuntimeWasm} {
				rt, err := fake.New(fake.Config{Name: class, Version: "1.2.3"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.infoFails[class] {
					rt.SetHooks(fake.Hooks{Info: func(context.Context) error { return failing }})
				}
				h.rts[class] = rt
			}
			h.start()
			testutil.Eventually(t, 5*time.Second, func() error {
				_, _, hb, st := h.cp.counts()
				if hb < 2 || st < 2 {
					return fmt.Errorf("%d heartbeats and %d status reports, want 2 of each", hb, st)
				}
				return nil
			})
			h.cp.mu.Lock()
			n := h.cp.registers[0]
			h.cp.mu.Unlock()
			var got []string
			for _, r := range n.Status.NodeInfo.Runtimes {
				got = append(got, r.Name)
				if r.Version != "1.2.3" {
					t.Errorf("runtime %s version %q", r.Name, r.Version)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("advertised runtimes %v, want %v", got, tc.want)
			}
			if n.Name != "node-1" || n.Labels["zone"] != "a" || n.Labels["kubernetes.io/hostname"] != "node-1" {
				t.Errorf("name %q labels %v", n.Name, n.Labels)
			}
			c, a := n.Status.Capacity, n.Status.Allocatable
			if q := c[api.ResourceCPU]; q.MilliValue() != int64(runtime.NumCPU())*1000 {
				t.Errorf("cpu capacity %s, want %d", q.String(), runtime.NumCPU())
			}
			if q, qa := c[api.ResourceMemory], a[api.ResourceMemory]; q.Value() <= 0 || qa.Value() >= q.Value() {
				t.Errorf("memory capacity %s allocatable %s: want allocatable below a positive capacity", q.String(), qa.String())
			}
			if q := c[api.ResourcePods]; q.Value() != 110 {
				t.Errorf("pods %s, want 110", q.String())
			}
			if q := a[api.ResourceWasmPods]; q.Value() != 500 {
				t.Errorf("wasm pods %s, want 500", q.String())
			}
			info := n.Status.NodeInfo
			if info.KernelVersion == "" || info.OSImage == "" || info.Architecture != runtime.GOARCH || info.AgentVersion != Version {
				t.Errorf("nodeInfo %+v", info)
			}
			var ip string
			for _, ad := range n.Status.Addresses {
				if ad.Type == api.NodeInternalIP {
					ip = ad.Address
				}
			}
			if ip == "" {
				t.Errorf("no InternalIP in %v", n.Status.Addresses)
			}
			for _, typ := range []string{api.NodeReady, api.NodeMemoryPressure, api.NodeDiskPressure, api.NodePIDPressure} {
				cond := n.Status.Condition(typ)
				if cond == nil || cond.LastHeartbeatTime.IsZero() || cond.LastTransitionTime.IsZero() {
					t.Errorf("condition %s = %+v, want set with times", typ, cond)
					continue
				}
				want := api.ConditionFalse
				if typ == api.NodeReady {
					want = tc.ready
				}
				if cond.Status != want {
					t.Errorf("condition %s = %s (%s), want %s", typ, cond.Status, cond.Message, want)
				}
			}
		})
	}
}

func TestNameFromHostname(t *testing.T) {
	cases := map[string]string{
		"Worker-1":              "worker-1",
		"host.example.com":      "host",
		"my_box":                "my-box",
		"-x-":                   "x",
		"":                      "localhost",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			if got := NameFromHostname(in); got != want {
				t.Errorf("NameFromHostname(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "dotted name", cfg: Config{Name: "a.b"}, want: "node name"},
		{name: "negative interval", cfg: Config{Name: "n", HeartbeatInterval: -1}, want: "HeartbeatInterval"},
		{name: "max below base", cfg: Config{Name: "n", BackoffBase: time.Second, BackoffMax: time.Millisecond}, want: "BackoffMax"},
	}
	srv := testutil.StartNATS(t)
	nc := testutil.Connect(t, srv)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			_, err := New(tc.cfg, nc, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestPodPhase(t *testing.T) {
	run := api.ContainerStatus{State: api.ContainerState{Running: &api.ContainerStateRunning{}}}
	ok := api.ContainerStatus{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 0}}}
	bad := api.ContainerStatus{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 1}}}
	wait := api.ContainerStatus{State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: runtimes.ReasonContainerCreating}}}
	crash := api.ContainerStatus{State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: runtimes.ReasonCrashLoopBackOff}},
		LastState: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 1}}}
	cases := []struct {
		name   string
		policy api.RestartPolicy
		cs     []api.ContainerStatus
		want   api.PodPhase
	}{
		{"waiting is pending", api.RestartPolicyAlways, []api.ContainerStatus{run, wait}, api.PodPending},
		{"running", api.RestartPolicyAlways, []api.ContainerStatus{run, ok}, api.PodRunning},
		{"always never completes", api.RestartPolicyAlways, []api.ContainerStatus{ok, ok}, api.PodRunning},
		{"crash loop is running", api.RestartPolicyAlways, []api.ContainerStatus{crash}, api.PodRunning},
		{"never all ok", api.RestartPolicyNever, []api.ContainerStatus{ok, ok}, api.PodSucceeded},
		{"never one failed", api.RestartPolicyNever, []api.ContainerStatus{ok, bad}, api.PodFailed},
		{"onfailure all ok", api.RestartPolicyOnFailure, []api.ContainerStatus{ok}, api.PodSucceeded},
		{"onfailure restarting", api.RestartPolicyOnFailure, []api.ContainerStatus{ok, crash}, api.PodRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := podPhase(tc.policy, tc.cs, true, false); got != tc.want {
				t.Errorf("podPhase = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRuntimeErrorsAreRetried(t *testing.T) {
	cases := []struct {
		name   string
		hooks  func(fail func() error) fake.Hooks
		reason string
	}{
		{name: "sandbox", reason: runtimes.ReasonCreatePodSandboxError, hooks: func(fail func() error) fake.Hooks {
			return fake.Hooks{CreateSandbox: func(context.Context, *runtimes.SandboxConfig) error { return fail() }}
		}},
		{name: "create container", reason: runtimes.ReasonCreateContainerError, hooks: func(fail func() error) fake.Hooks {
			return fake.Hooks{CreateContainer: func(context.Context, string, *runtimes.ContainerConfig) error { return fail() }}
		}},
		{name: "start container", reason: runtimes.ReasonRunContainerError, hooks: func(fail func() error) fake.Hooks {
			return fake.Hooks{StartContainer: func(context.Context, string) error { return fail() }}
		}},
		{name: "reason from the runtime", reason: "InvalidModule", hooks: func(fail func() error) fake.Hooks {
			return fake.Hooks{StartContainer: func(context.Context, string) error {
				if err := fail(); err != nil {
					return runtimes.WithReason("InvalidModule", false, err)
				}
				return nil
			}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			failures := 3
			var mu = make(chan struct{}, 1)
			h.fake.SetHooks(tc.hooks(func() error {
				mu <- struct{}{}
				defer func() { <-mu }()
				if failures > 0 {
					failures--
					return errors.New("injected failure")
				}
				return nil
			}))
			h.start()
			p := h.cp.assign(mkpod("retry", api.RestartPolicyAlways, "fake://run"))
			h.cp.waitPhase(t, p.UID, api.PodRunning)
			seen := false
			for _, u := range h.cp.history(p.UID) {
				if w := u.Status.ContainerStatuses[0].State.Waiting; w != nil && w.Reason == tc.reason && strings.Contains(w.Message, "injected failure") {
					seen = true
				}
			}
			if !seen {
				t.Errorf("never reported waiting %s with the error", tc.reason)
			}
			// Nothing is left over from the failed attempts.
			sbs, _ := h.fake.ListSandboxes(context.Background())
			cs, _ := h.fake.ListContainers(context.Background(), "")
			if len(sbs) != 1 || len(cs) != 1 {
				t.Errorf("%d sandboxes and %d containers, want 1 of each", len(sbs), len(cs))
			}
		})
	}
}

func TestLogsWithoutStream(t *testing.T) {
	h := newHarness(t)
	if err := h.logsJS.DeleteStream(context.Background(), api.LogsStream); err != nil {
		t.Fatal(err)
	}
	sub, err := h.cp.nc.SubscribeSync(api.LogSubject("*", "default", "nostream", "c0"))
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	p := mkpod("nostream", api.RestartPolicyNever, "fake://prog")
	p.Spec.Containers[0].Command = []string{"out", "one", "out", "two"}
	p = h.cp.assign(p)
	h.cp.waitPhase(t, p.UID, api.PodSucceeded)
	// Without the stream a line whose publish went unacknowledged (a busy
	// machine) is sent again: at least once, in order.
	var got []string
	for !slices.Contains(got, "two") {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("log lines so far %q: %v", got, err)
		}
		got = append(got, string(m.Data))
		if m.Header.Get(HeaderLogAttempt) != "0" {
			t.Errorf("attempt header %q, want 0", m.Header.Get(HeaderLogAttempt))
		}
	}
	if !slices.Equal(slices.Compact(got), []string{"one", "two"}) {
		t.Errorf("lines %q, want one, two", got)
	}
}

func TestClosedConnectionEndsRun(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := h.cp.assign(mkpod("survivor", api.RestartPolicyAlways, "fake://run"))
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	h.nc.Close()
	select {
	case err := <-h.done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Run = %v, want an error saying the connection closed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the connection closed")
	}
	h.cancel = nil
	cs, _ := h.fake.ListContainers(context.Background(), "")
	if len(cs) != 1 || cs[0].State != runtimes.ContainerRunning {
		t.Errorf("containers after the agent ended: %d, want the pod's one still running", len(cs))
	}
}

// An in-process runtime (wasm) loses its running containers with the agent
// process; the new agent restarts them at once, not after a crash back-off.
func TestInProcessRuntimeRestartsWithoutBackoff(t *testing.T) {
	h := newHarness(t)
	h.cfg.BackoffBase, h.cfg.BackoffMax = time.Hour, time.Hour
	stateDir := t.TempDir()
	newFake := func() {
		rt, err := fake.New(fake.Config{Name: api.RuntimeWasm, StateDir: stateDir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.fake = rt
		h.rts = map[string]runtimes.Runtime{api.RuntimeWasm: rt}
	}
	newFake()
	h.start()
	p := mkpod("module", api.RestartPolicyAlways, "fake://run")
	p.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	p = h.cp.assign(p)
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	h.stop()
	newFake() // the runtime died with the agent; its state file says the module exited
	h.start()
	testutil.Eventually(t, 10*time.Second, func() error {
		u := h.cp.last(p.UID)
		cs := u.Status.ContainerStatuses[0]
		if cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Errorf("container %s, want running again with restartCount 1", describe(u.Status.ContainerStatuses))
		}
		if cs.LastState.Terminated == nil || cs.LastState.Terminated.Reason != runtimes.ReasonAgentRestarted {
			return fmt.Errorf("last state %+v, want terminated %s", cs.LastState, runtimes.ReasonAgentRestarted)
		}
		return nil
	})
	if u := h.cp.last(p.UID); u.Status.PodIP == "" || u.Status.PodIP != u.Status.HostIP {
		t.Errorf("wasm pod IP %q, want the node IP %q", u.Status.PodIP, u.Status.HostIP)
	}
}

func TestRuntimeLossIsReported(t *testing.T) {
	h := newHarness(t)
	h.cfg.StatusInterval = time.Hour // only a change may send the status
	h.start()
	h.fake.SetHooks(fake.Hooks{Info: func(context.Context) error { return errors.New("daemon down") }})
	testutil.Eventually(t, 5*time.Second, func() error {
		h.cp.mu.Lock()
		defer h.cp.mu.Unlock()
		if len(h.cp.statuses) == 0 {
			return fmt.Errorf("no node status sent")
		}
		st := h.cp.statuses[len(h.cp.statuses)-1]
		if len(st.NodeInfo.Runtimes) != 0 {
			return fmt.Errorf("runtimes %v still advertised", st.NodeInfo.Runtimes)
		}
		if c := st.Condition(api.NodeReady); c == nil || c.Status != api.ConditionFalse || !strings.Contains(c.Message, "daemon down") {
			return fmt.Errorf("Ready = %+v, want False naming the cause", c)
		}
		return nil
	})
}

func TestImageChangeRestartsContainer(t *testing.T) {
	cases := []struct {
		name   string
		policy api.RestartPolicy
	}{
		{"always", api.RestartPolicyAlways},
		{"never", api.RestartPolicyNever}, // restarted anyway, as the kubelet does
	}
	h := newHarness(t)
	h.start()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := h.cp.assign(mkpod("image-"+tc.name, tc.policy, "fake://run", "fake://run"))
			h.cp.waitPhase(t, p.UID, api.PodRunning)
			h.cp.mu.Lock()
			c := *h.cp.pods[p.UID]
			h.cp.mu.Unlock()
			c.Spec.Containers = slices.Clone(c.Spec.Containers)
			c.Spec.Containers[1].Image = "fake://sleep/1h"
			h.cp.push(api.EventModified, h.cp.store(&c))
			testutil.Eventually(t, 10*time.Second, func() error {
				u := h.cp.last(p.UID)
				cs := u.Status.ContainerStatuses
				if u.Status.Phase != api.PodRunning || cs[1].Image != "fake://sleep/1h" || cs[1].State.Running == nil || cs[1].RestartCount != 1 || cs[1].LastState.Terminated == nil {
					return fmt.Errorf("phase %s containers %s: want c1 running the new image after one restart", u.Status.Phase, describe(cs))
				}
				if cs[0].RestartCount != 0 || cs[0].State.Running == nil {
					return fmt.Errorf("c0 %s: want it untouched", describe(cs[:1]))
				}
				return nil
			})
			for _, u := range h.cp.history(p.UID) {
				if u.Status.Phase == api.PodSucceeded || u.Status.Phase == api.PodFailed {
					t.Errorf("pod reported %s while its container changed image", u.Status.Phase)
				}
			}
		})
	}
}

func TestReregistersWhenNodeIsForgotten(t *testing.T) {
	h := newHarness(t)
	h.start()
	regs, syncs, _, _ := h.cp.counts()
	h.cp.mu.Lock()
	h.cp.forgotten = true
	h.cp.mu.Unlock()
	testutil.Eventually(t, 5*time.Second, func() error {
		r, s, _, _ := h.cp.counts()
		h.cp.mu.Lock()
		forgotten := h.cp.forgotten
		h.cp.mu.Unlock()
		if r <= regs || s <= syncs || forgotten {
			return fmt.Errorf("registers %d syncs %d (forgotten %v); want a new register and sync", r, s, forgotten)
		}
		return nil
	})
}

// While the NATS server is down, pods keep running and their output and
// status changes wait; after it is back every line is in the stream once.
func TestServerOutage(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := mkpod("outage", api.RestartPolicyNever, "fake://prog")
	p.Spec.Containers[0].Command = []string{"out", "before", "sleep", "1s", "out", "during", "sleep", "1s", "out", "after"}
	p = h.cp.assign(p)
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := h.logLines("default", "outage", "c0"); !slices.Equal(got, []string{"before"}) {
			return fmt.Errorf("log lines %q, want before", got)
		}
		return nil
	})
	port := h.srv.Addr().(*net.TCPAddr).Port
	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	cs, _ := h.fake.ListContainers(context.Background(), "")
	if len(cs) != 1 || cs[0].State != runtimes.ContainerRunning {
		t.Fatalf("container not running while the server is down")
	}
	testutil.Eventually(t, 5*time.Second, func() error { // "during" is written while nobody can receive it
		b, _ := os.ReadFile(filepath.Join(h.podDir(p.UID), "c0.0.log"))
		if !strings.Contains(string(b), "during") {
			return fmt.Errorf("log file %q, want the line written during the outage", b)
		}
		return nil
	})
	h.srv = testutil.StartNATSAt(t, h.srv.Dir, port)
	h.cp.waitPhase(t, p.UID, api.PodSucceeded)
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := h.logLines("default", "outage", "c0"); !slices.Equal(got, []string{"before", "during", "after"}) {
			return fmt.Errorf("log lines %q, want before, during, after once each", got)
		}
		return nil
	})
}
