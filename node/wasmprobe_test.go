package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// wasmCacheDir is the wasm runtime's compilation cache, shared with the
// runtime's own tests so that each module compiles once per machine.
var wasmCacheDir = filepath.Join(os.TempDir(), "kyb-wasm-test-cache")

// wasmProbeHarness is a probe harness whose agent also has the real wasm
// runtime.
func wasmProbeHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.cfg.ProbeSecond = 5 * time.Millisecond
	rt, err := wasm.New(wasm.Config{
		StateDir: t.TempDir(), CacheDir: wasmCacheDir, ModuleDirs: []string{os.TempDir()},
		HTTP: wasm.HTTPConfig{DefaultHostIP: "127.0.0.1"},
	}, nil)
	if err != nil {
		t.Fatalf("wasm.New: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	h.rts[api.RuntimeWasm] = rt
	h.start()
	return h
}

func wasmModule(t *testing.T, pkg string) string {
	t.Helper()
	return "file://" + runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, pkg, "wasip1", "wasm"), wasmCacheDir)
}

func freeTCPPort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestWasmExecLivenessRestarts: for a wasm pod, an exec probe runs a new
// instance of the module with the probe's command as its arguments and the
// pod's mounts; when it fails the module is restarted.
func TestWasmExecLivenessRestarts(t *testing.T) {
	h := wasmProbeHarness(t)
	mod := wasmModule(t, "./runtimes/runtimetest/testprog")
	pod := probePod("wasm-live", func(c *api.Container) {
		c.Image = mod
		c.LivenessProbe = catProbe("/data/healthy", 2)
	})
	pod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	api.Default(pod)
	p := h.cp.assign(pod)
	testutil.Eventually(t, 30*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if lt := cs.LastState.Terminated; cs.RestartCount < 1 || lt == nil || !strings.Contains(lt.Message, "Liveness probe failed") {
			return fmt.Errorf("restartCount %d, last state %+v; want a liveness restart", cs.RestartCount, lt)
		}
		return nil
	})
	h.dataFile(p.UID, "healthy", "ok")
	testutil.Eventually(t, 30*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if cs.State.Running == nil || !cs.Ready || condition(st, api.PodReady) != api.ConditionTrue {
			return fmt.Errorf("%s; want running and ready once the probe passes", describe(st.ContainerStatuses))
		}
		return nil
	})
}

// TestWasmHTTPProbesInProcess: a WAGI pod's httpGet probes are served by
// its handler in process (the probe names the containerPort, which nothing
// listens on: only the hostPort is served), with the module's status:
// 500 from the liveness path restarts it, 503 from the readiness path keeps
// it not ready, 200 makes it ready.
func TestWasmHTTPProbesInProcess(t *testing.T) {
	h := wasmProbeHarness(t)
	mod := wasmModule(t, "./runtimes/wasm/testdata/cgi")
	httpProbe := func(path string, failures int32) *api.Probe {
		return &api.Probe{ProbeHandler: api.ProbeHandler{HTTPGet: &api.HTTPGetAction{Path: path, Port: api.FromString("http")}},
			PeriodSeconds: 1, TimeoutSeconds: 1000, FailureThreshold: failures, SuccessThreshold: 1}
	}
	mk := func(name, live, ready string) *api.Pod {
		p := mkpod(name, api.RestartPolicyAlways, mod)
		p.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
		c := &p.Spec.Containers[0]
		c.Ports = []api.ContainerPort{{Name: "http", ContainerPort: 8080, HostPort: freeTCPPort(t)}}
		c.LivenessProbe = httpProbe(live, 2)
		c.ReadinessProbe = httpProbe(ready, 1)
		api.Default(p)
		return h.cp.assign(p)
	}
	healthy := mk("wagi-ok", "/status/200", "/status/204")
	sick := mk("wagi-sick", "/status/500", "/status/503")
	// tcpSocket: to the port's hostPort on the node.
	tcp := mkpod("wagi-tcp", api.RestartPolicyAlways, mod)
	tcp.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	tcp.Spec.Containers[0].Ports = []api.ContainerPort{{Name: "http", ContainerPort: 8080, HostPort: freeTCPPort(t)}}
	tcp.Spec.Containers[0].ReadinessProbe = &api.Probe{ProbeHandler: api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: api.FromString("http")}},
		PeriodSeconds: 1, TimeoutSeconds: 1000, FailureThreshold: 1, SuccessThreshold: 1}
	api.Default(tcp)
	tcp = h.cp.assign(tcp)
	testutil.Eventually(t, 30*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, tcp.UID)
		if err != nil {
			return err
		}
		if !cs.Ready || condition(st, api.PodReady) != api.ConditionTrue {
			return fmt.Errorf("tcpSocket pod: %s; want ready", describe(st.ContainerStatuses))
		}
		return nil
	})
	testutil.Eventually(t, 30*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, healthy.UID)
		if err != nil {
			return err
		}
		if cs.State.Running == nil || !cs.Ready || condition(st, api.PodReady) != api.ConditionTrue {
			return fmt.Errorf("healthy pod: %s; want running and ready", describe(st.ContainerStatuses))
		}
		return nil
	})
	testutil.Eventually(t, 30*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, sick.UID)
		if err != nil {
			return err
		}
		if condition(st, api.PodReady) != api.ConditionFalse || cs.Ready {
			return fmt.Errorf("sick pod ready")
		}
		if lt := cs.LastState.Terminated; cs.RestartCount < 1 || lt == nil || !strings.Contains(lt.Message, "statuscode: 500") {
			return fmt.Errorf("sick pod: restartCount %d, last state %+v; want a liveness restart", cs.RestartCount, lt)
		}
		return nil
	})
	if _, cs, _ := containerStatus(t, h.cp, healthy.UID); cs.RestartCount != 0 {
		t.Errorf("the healthy pod was restarted %d times", cs.RestartCount)
	}
}

// A wasm module writes its termination message in the directory preopened
// at its terminationMessagePath's directory (/dev by default), or in a
// volume that holds the path; a postStart exec hook runs a new instance of
// the module, and its failure kills the container.
func TestWasmTerminationMessageAndHooks(t *testing.T) {
	h := wasmProbeHarness(t)
	mod := wasmModule(t, "./runtimes/runtimetest/testprog")
	for _, tc := range []struct {
		name, path string
		args       []string
		want       string
	}{
		{"default", "", []string{"write", "/dev/termination-log", "bye", "exit", "3"}, "bye"},
		{"in a volume", "/data/why", []string{"write", "/data/why", "because", "exit", "1"}, "because"},
		{"own directory", "/msg/why", []string{"write", "/msg/why", "own", "exit", "0"}, "own"},
		{"at the root", "/why", []string{"write", "/why", "root", "exit", "0"}, "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := probePod("wasm-term-"+strings.ReplaceAll(tc.name, " ", "-"), func(c *api.Container) {
				c.Image, c.Args, c.TerminationMessagePath = mod, tc.args, tc.path
			})
			pod.Spec.RestartPolicy = api.RestartPolicyNever
			pod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
			api.Default(pod)
			p := h.cp.assign(pod)
			testutil.Eventually(t, 30*time.Second, func() error {
				_, cs, err := containerStatus(t, h.cp, p.UID)
				if err != nil {
					return err
				}
				if cs.State.Terminated == nil || cs.State.Terminated.Message != tc.want {
					return fmt.Errorf("state %+v, want terminated with message %q", cs.State, tc.want)
				}
				return nil
			})
		})
	}
	t.Run("postStart", func(t *testing.T) {
		events := h.watchEvents("wasm-poststart")
		pod := probePod("wasm-poststart", func(c *api.Container) {
			c.Image = mod
			c.Lifecycle = &api.Lifecycle{PostStart: execHook("cat", "/data/ready")}
		})
		pod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
		api.Default(pod)
		p := h.cp.assign(pod)
		testutil.Eventually(t, 30*time.Second, func() error {
			_, cs, err := containerStatus(t, h.cp, p.UID)
			if err != nil {
				return err
			}
			if !events.find(runtimes.ReasonFailedPostStartHook, "") || cs.RestartCount < 1 {
				return fmt.Errorf("restartCount %d; want a FailedPostStartHook event and a restart", cs.RestartCount)
			}
			return nil
		})
		h.dataFile(p.UID, "ready", "yes")
		testutil.Eventually(t, 30*time.Second, func() error {
			_, cs, err := containerStatus(t, h.cp, p.UID)
			if err != nil {
				return err
			}
			if cs.State.Running == nil {
				return fmt.Errorf("state %+v, want running once the hook passes", cs.State)
			}
			return nil
		})
	})
}
