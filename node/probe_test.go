package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

// probeHarness is a harness whose probes count a "second" as 5 ms.
func probeHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.cfg.ProbeSecond = 5 * time.Millisecond
	h.start()
	return h
}

// probePod is a pod of one fake container that sleeps, with an emptyDir
// mounted at /data (where the tests make the files its exec probes cat).
func probePod(name string, edit func(c *api.Container)) *api.Pod {
	p := mkpod(name, api.RestartPolicyAlways, "fake://prog")
	p.Spec.Volumes = []api.Volume{{Name: "data", EmptyDir: &api.EmptyDirVolumeSource{}}}
	c := &p.Spec.Containers[0]
	c.Args = []string{"sleep", "forever"}
	c.VolumeMounts = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	edit(c)
	api.Default(p)
	return p
}

func catProbe(path string, failures int32) *api.Probe {
	return &api.Probe{ProbeHandler: api.ProbeHandler{Exec: &api.ExecAction{Command: []string{"cat", path}}},
		PeriodSeconds: 1, TimeoutSeconds: 100, FailureThreshold: failures, SuccessThreshold: 1}
}

// dataFile makes (or, with content "", removes) a file in the pod's
// emptyDir "data".
func (h *harness) dataFile(uid, name, content string) {
	h.t.Helper()
	dir, err := h.agent.podPath(uid, "volumes", "data")
	if err != nil {
		h.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if content == "" {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			h.t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// podEvents finds the events the control plane got about a pod.
type podEvents struct {
	cp   *fakeCP
	name string
}

func (h *harness) watchEvents(name string) *podEvents { return &podEvents{cp: h.cp, name: name} }

func (pe *podEvents) find(reason, contains string) bool {
	pe.cp.mu.Lock()
	defer pe.cp.mu.Unlock()
	for _, ev := range pe.cp.events {
		if ev.InvolvedObject.Name == pe.name && ev.Reason == reason && strings.Contains(ev.Message, contains) {
			return true
		}
	}
	return false
}

// execs counts the probe commands the fake runtime ran that contain s.
func (h *harness) execs(s string) int {
	n := 0
	for _, c := range h.fake.Calls() {
		if strings.HasPrefix(c, "ExecSync ") && strings.Contains(c, s) {
			n++
		}
	}
	return n
}

func containerStatus(t testing.TB, cp *fakeCP, uid string) (api.PodStatus, api.ContainerStatus, error) {
	u := cp.last(uid)
	if u == nil || len(u.Status.ContainerStatuses) == 0 {
		return api.PodStatus{}, api.ContainerStatus{}, fmt.Errorf("no container status yet")
	}
	return u.Status, u.Status.ContainerStatuses[0], nil
}

func condition(st api.PodStatus, typ string) api.ConditionStatus {
	if c := st.Condition(typ); c != nil {
		return c.Status
	}
	return ""
}

// TestLivenessFailureRestarts: a failing liveness probe kills the
// container, which restarts with restartCount+1, its last state says why,
// and the pod's events show Unhealthy and Killing; once the probe passes
// the container keeps running.
func TestLivenessFailureRestarts(t *testing.T) {
	h := probeHarness(t)
	events := h.watchEvents("live")
	p := h.cp.assign(probePod("live", func(c *api.Container) { c.LivenessProbe = catProbe("/data/healthy", 2) }))
	testutil.Eventually(t, 10*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		lt := cs.LastState.Terminated
		if cs.RestartCount < 2 || lt == nil {
			return fmt.Errorf("restartCount %d, last state %+v; want restarts", cs.RestartCount, lt)
		}
		if !strings.Contains(lt.Message, "Liveness probe failed") || !strings.Contains(lt.Message, "/data/healthy") {
			return fmt.Errorf("last state message %q, want the liveness failure", lt.Message)
		}
		return nil
	})
	if !events.find("Killing", "failed liveness probe, will be restarted") {
		t.Errorf("no Killing event for the liveness failure: %+v", h.cp.events)
	}
	if !events.find(runtimes.ReasonUnhealthy, "Liveness probe failed") {
		t.Errorf("no Unhealthy event: %+v", h.cp.events)
	}
	// Healthy now: it runs, ready, and is not restarted again.
	h.dataFile(p.UID, "healthy", "ok")
	// A probe already running when the file appeared may still fail once:
	// count restarts only after a few probes have seen the file.
	n0 := h.execs("/data/healthy")
	var restarts int32
	testutil.Eventually(t, 10*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if h.execs("/data/healthy") < n0+3 {
			return fmt.Errorf("waiting for probes that see the file")
		}
		if cs.State.Running == nil || !cs.Ready || condition(st, api.PodReady) != api.ConditionTrue {
			return fmt.Errorf("state %+v ready %v, want running and ready", cs.State, cs.Ready)
		}
		restarts = cs.RestartCount
		return nil
	})
	// Ten more passing probes of this attempt, and no restart.
	n := h.execs("/data/healthy")
	testutil.Eventually(t, 10*time.Second, func() error {
		if h.execs("/data/healthy") < n+10 {
			return fmt.Errorf("waiting for more probes")
		}
		return nil
	})
	if _, cs, _ := containerStatus(t, h.cp, p.UID); cs.RestartCount != restarts || cs.State.Running == nil {
		t.Errorf("a healthy container was restarted: restartCount %d, was %d; state %+v", cs.RestartCount, restarts, cs.State)
	}
}

// TestLivenessFailureUnderNeverIsNotRestarted: restartPolicy Never is kept.
func TestLivenessFailureUnderNeverIsNotRestarted(t *testing.T) {
	h := probeHarness(t)
	pod := probePod("never", func(c *api.Container) { c.LivenessProbe = catProbe("/data/healthy", 1) })
	pod.Spec.RestartPolicy = api.RestartPolicyNever
	p := h.cp.assign(pod)
	u := h.cp.waitPhase(t, p.UID, api.PodFailed)
	cs := u.Status.ContainerStatuses[0]
	if cs.RestartCount != 0 || cs.State.Terminated == nil || !strings.Contains(cs.State.Terminated.Message, "Liveness probe failed") {
		t.Errorf("container %+v, want terminated by its liveness probe, never restarted", cs)
	}
}

// TestReadinessFailureKeepsReadyFalse: a running container whose readiness
// probe fails is not ready, nor is its pod; it is not restarted; Ready
// follows the probe both ways.
func TestReadinessFailureKeepsReadyFalse(t *testing.T) {
	h := probeHarness(t)
	p := h.cp.assign(probePod("ready", func(c *api.Container) { c.ReadinessProbe = catProbe("/data/ready", 1) }))
	notReady := func() {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			st, cs, err := containerStatus(t, h.cp, p.UID)
			if err != nil {
				return err
			}
			if cs.State.Running == nil || cs.Ready || condition(st, api.PodReady) != api.ConditionFalse || condition(st, api.ContainersReady) != api.ConditionFalse {
				return fmt.Errorf("running %v ready %v, pod Ready %s; want running, not ready", cs.State.Running != nil, cs.Ready, condition(st, api.PodReady))
			}
			return nil
		})
	}
	notReady()
	if st, _, _ := containerStatus(t, h.cp, p.UID); st.Condition(api.PodReady).Message != "containers with unready status: [c0]" {
		t.Errorf("Ready condition %+v, want it to name the unready container", st.Condition(api.PodReady))
	}
	// Several failed probes later, still not ready, never restarted.
	n := h.execs("/data/ready")
	testutil.Eventually(t, 10*time.Second, func() error {
		if h.execs("/data/ready") < n+5 {
			return fmt.Errorf("waiting for more probes")
		}
		return nil
	})
	notReady()
	if st, cs, _ := containerStatus(t, h.cp, p.UID); cs.RestartCount != 0 || st.Phase != api.PodRunning {
		t.Errorf("a failing readiness probe restarted the container (%d) or changed the phase (%s)", cs.RestartCount, st.Phase)
	}
	h.dataFile(p.UID, "ready", "ok")
	testutil.Eventually(t, 10*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if !cs.Ready || condition(st, api.PodReady) != api.ConditionTrue || condition(st, api.ContainersReady) != api.ConditionTrue {
			return fmt.Errorf("ready %v, pod Ready %s; want ready", cs.Ready, condition(st, api.PodReady))
		}
		return nil
	})
	h.dataFile(p.UID, "ready", "")
	notReady()
}

// TestStartupGatesLiveness: while the startup probe has not succeeded, the
// liveness probe (which would fail) does not run and the container is
// neither started nor ready; once it succeeds, liveness runs and restarts
// the container.
func TestStartupGatesLiveness(t *testing.T) {
	h := probeHarness(t)
	p := h.cp.assign(probePod("startup", func(c *api.Container) {
		c.StartupProbe = catProbe("/data/started", 1000)
		c.LivenessProbe = catProbe("/data/alive", 1)
		c.ReadinessProbe = catProbe("/data/started", 1)
	}))
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := h.execs("/data/started"); n < 10 {
			return fmt.Errorf("%d startup probes so far", n)
		}
		return nil
	})
	if n := h.execs("/data/alive"); n != 0 {
		t.Fatalf("the liveness probe ran %d times before the startup probe succeeded", n)
	}
	st, cs, err := containerStatus(t, h.cp, p.UID)
	if err != nil {
		t.Fatal(err)
	}
	if cs.State.Running == nil || cs.RestartCount != 0 || cs.Started == nil || *cs.Started || cs.Ready || condition(st, api.PodReady) != api.ConditionFalse {
		t.Fatalf("before startup: %s; want running, not started, not ready, no restart", describe(st.ContainerStatuses))
	}
	h.dataFile(p.UID, "started", "ok")
	testutil.Eventually(t, 10*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if cs.RestartCount < 1 || cs.LastState.Terminated == nil || !strings.Contains(cs.LastState.Terminated.Message, "Liveness probe failed") {
			return fmt.Errorf("restartCount %d last %+v; want a liveness restart once started", cs.RestartCount, cs.LastState.Terminated)
		}
		return nil
	})
	if h.execs("/data/alive") == 0 {
		t.Errorf("the liveness probe never ran")
	}
}

// TestStartupFailureKills: a startup probe that fails failureThreshold
// times kills the container, as a liveness failure does.
func TestStartupFailureKills(t *testing.T) {
	h := probeHarness(t)
	events := h.watchEvents("slow")
	p := h.cp.assign(probePod("slow", func(c *api.Container) { c.StartupProbe = catProbe("/data/never", 3) }))
	testutil.Eventually(t, 10*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if cs.RestartCount < 1 || cs.LastState.Terminated == nil || !strings.Contains(cs.LastState.Terminated.Message, "Startup probe failed") {
			return fmt.Errorf("restartCount %d last %+v", cs.RestartCount, cs.LastState.Terminated)
		}
		return nil
	})
	if !events.find("Killing", "failed startup probe") {
		t.Errorf("no Killing event for the startup failure")
	}
}

// TestNetworkProbes: httpGet and tcpSocket probes of a container go over
// the network (here to a server on the probe's host, 127.0.0.1), with the
// probe's path and headers; readiness follows the server's answers.
func TestNetworkProbes(t *testing.T) {
	h := probeHarness(t)
	var code atomic.Int32
	code.Store(http.StatusServiceUnavailable)
	var sawHeader atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" && r.Header.Get("X-Probe") == "yes" && strings.HasPrefix(r.UserAgent(), "kube-probe/") {
			sawHeader.Store(true)
		}
		w.WriteHeader(int(code.Load()))
	}))
	t.Cleanup(srv.Close)
	port := int32(srv.Listener.Addr().(*net.TCPAddr).Port)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpPort := int32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close() // nothing listens: the tcpSocket readiness probe of "tcp" fails

	mk := func(name string, probe *api.Probe) *api.Pod {
		return h.cp.assign(probePod(name, func(c *api.Container) {
			c.Ports = []api.ContainerPort{{Name: "web", ContainerPort: port}}
			c.ReadinessProbe = probe
		}))
	}
	httpPod := mk("http", &api.Probe{ProbeHandler: api.ProbeHandler{HTTPGet: &api.HTTPGetAction{
		Path: "/ready", Port: api.FromString("web"), Host: "127.0.0.1", HTTPHeaders: []api.HTTPHeader{{Name: "X-Probe", Value: "yes"}},
	}}, PeriodSeconds: 1, TimeoutSeconds: 200, FailureThreshold: 1, SuccessThreshold: 1})
	tcpOK := mk("tcp-ok", &api.Probe{ProbeHandler: api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(port), Host: "127.0.0.1"}},
		PeriodSeconds: 1, TimeoutSeconds: 200, FailureThreshold: 1, SuccessThreshold: 1})
	tcpBad := mk("tcp-bad", &api.Probe{ProbeHandler: api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(tcpPort), Host: "127.0.0.1"}},
		PeriodSeconds: 1, TimeoutSeconds: 200, FailureThreshold: 1, SuccessThreshold: 1})

	ready := func(uid string, want bool) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			st, cs, err := containerStatus(t, h.cp, uid)
			if err != nil {
				return err
			}
			if cs.State.Running == nil || cs.Ready != want || (condition(st, api.PodReady) == api.ConditionTrue) != want {
				return fmt.Errorf("running %v ready %v Ready %s, want ready %v", cs.State.Running != nil, cs.Ready, condition(st, api.PodReady), want)
			}
			return nil
		})
	}
	ready(httpPod.UID, false) // 503
	ready(tcpOK.UID, true)
	ready(tcpBad.UID, false)
	code.Store(http.StatusOK)
	ready(httpPod.UID, true)
	if !sawHeader.Load() {
		t.Errorf("the probe's path, header and user agent did not arrive")
	}
	code.Store(http.StatusInternalServerError)
	ready(httpPod.UID, false)
}
