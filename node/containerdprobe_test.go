package node

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/containerd/containerdtest"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// containerdProbeHarness is a probe harness whose agent runs containers on
// the containerd at $KYB_CONTAINERD_ADDRESS (skipped without one, failed
// with CI=true, as runtimes/containerd's tests), and the reference of an
// image of the conformance test program (/testprog) in an in-process
// registry.
func containerdProbeHarness(t *testing.T) (*harness, string) {
	return containerdHarness(t, nil)
}

// containerdHarness is containerdProbeHarness with setup run on the harness
// before its agent starts.
func containerdHarness(t *testing.T, setup func(*harness)) (*harness, string) {
	h := newHarness(t)
	h.cfg.ProbeSecond = 5 * time.Millisecond
	rt := containerdtest.Runtime(t, containerd.Config{
		Namespace: containerdtest.Namespace("kyb-node-probe-test"), StateDir: t.TempDir(), IPAMDir: t.TempDir(),
		NetworkName: "kybnodetest", BridgeName: "kybnode0", PodCIDR: "10.124.0.0/24", LogDriver: "file",
	}, testLogger(t))
	h.rts[api.RuntimeContainerd] = rt
	ref := pushTestProg(t)
	if setup != nil {
		setup(h)
	}
	h.start()
	return h, ref
}

// pushTestProg packs the conformance test program as /testprog in a
// one-layer image and pushes it to an in-process registry.
func pushTestProg(t *testing.T) string {
	t.Helper()
	return runtimetest.BinaryImage(t, runtimetest.BuildTestProg(t, "linux", runtime.GOARCH), "testprog")
}

// TestContainerdExecLivenessRestarts: for a container, an exec probe runs in
// it through containerd's task exec; when it fails the container is killed
// and restarted, and once it passes the container is ready.
func TestContainerdExecLivenessRestarts(t *testing.T) {
	h, ref := containerdProbeHarness(t)
	pod := probePod("ctr-live", func(c *api.Container) {
		c.Image = ref
		c.ImagePullPolicy = api.PullIfNotPresent
		c.LivenessProbe = catProbe("/data/healthy", 2)
		c.LivenessProbe.Exec.Command = []string{"/testprog", "cat", "/data/healthy"}
		c.LivenessProbe.TerminationGracePeriodSeconds = ptr(int64(1))
	})
	pod.Spec.HostNetwork = true // no pod network needed to exec
	p := h.cp.assign(pod)
	testutil.Eventually(t, 60*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if lt := cs.LastState.Terminated; cs.RestartCount < 1 || lt == nil || !strings.Contains(lt.Message, "Liveness probe failed") {
			return fmt.Errorf("restartCount %d, last state %+v, state %+v; want a liveness restart", cs.RestartCount, lt, cs.State)
		}
		return nil
	})
	h.dataFile(p.UID, "healthy", "ok")
	testutil.Eventually(t, 60*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if cs.State.Running == nil || !cs.Ready || condition(st, api.PodReady) != api.ConditionTrue {
			return fmt.Errorf("%s; want running and ready once the probe passes", describe(st.ContainerStatuses))
		}
		return nil
	})
	h.cp.markDeleted(p.UID, ptr(int64(0)))
	testutil.Eventually(t, 30*time.Second, func() error {
		if u := h.cp.last(p.UID); u == nil || !u.Finalized {
			return fmt.Errorf("pod not finalized yet")
		}
		return nil
	})
}

// In a container, the agent's termination message file is bind-mounted at
// terminationMessagePath (/dev/termination-log by default) and read after
// the exit; a failing preStop hook is recorded and the pod still stops.
func TestContainerdTerminationMessageAndPreStop(t *testing.T) {
	h, ref := containerdProbeHarness(t)
	t.Run("termination message", func(t *testing.T) {
		pod := probePod("ctr-term", func(c *api.Container) {
			c.Image, c.ImagePullPolicy = ref, api.PullIfNotPresent
			c.Args = []string{"write", "/dev/termination-log", "bye", "exit", "3"}
		})
		pod.Spec.HostNetwork = true
		pod.Spec.RestartPolicy = api.RestartPolicyNever
		p := h.cp.assign(pod)
		testutil.Eventually(t, 60*time.Second, func() error {
			_, cs, err := containerStatus(t, h.cp, p.UID)
			if err != nil {
				return err
			}
			if term := cs.State.Terminated; term == nil || term.ExitCode != 3 || term.Message != "bye" {
				return fmt.Errorf("state %+v, want terminated with code 3 and message bye", cs.State)
			}
			return nil
		})
	})
	t.Run("preStop", func(t *testing.T) {
		events := h.watchEvents("ctr-prestop")
		pod := probePod("ctr-prestop", func(c *api.Container) {
			c.Image, c.ImagePullPolicy = ref, api.PullIfNotPresent
			c.Lifecycle = &api.Lifecycle{PreStop: execHook("/testprog", "cat", "/data/missing")}
		})
		pod.Spec.HostNetwork = true
		p := h.cp.assign(pod)
		h.cp.waitPhase(t, p.UID, api.PodRunning)
		h.cp.markDeleted(p.UID, ptr(int64(2)))
		testutil.Eventually(t, 60*time.Second, func() error {
			if u := h.cp.last(p.UID); u == nil || !u.Finalized {
				return fmt.Errorf("not finalized")
			}
			if !events.find(runtimes.ReasonFailedPreStopHook, "/data/missing") {
				return fmt.Errorf("no FailedPreStopHook event")
			}
			return nil
		})
	})
}
