package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

func TestParsePortMaps(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []portMap
		err  string
	}{
		{[]string{"8080"}, []portMap{{8080, 8080}}, ""},
		{[]string{"9000:80", ":443"}, []portMap{{9000, 80}, {0, 443}}, ""},
		{[]string{"0"}, nil, "remote port"},
		{[]string{"80:"}, nil, "remote port"},
		{[]string{"x:80"}, nil, "local port"},
		{[]string{"70000:80"}, nil, "local port"},
	} {
		t.Run(strings.Join(tc.args, ","), func(t *testing.T) {
			got, err := parsePortMaps(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%v; want an error about the %s", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// startWasmAgent runs the agent n1 with the wasm runtime against the
// cluster of the last startCluster.
func startWasmAgent(t *testing.T) {
	t.Helper()
	cache := filepath.Join(os.TempDir(), "kyb-wasm-test-cache")
	rt, err := wasm.New(wasm.Config{StateDir: t.TempDir(), CacheDir: cache, ModuleDirs: []string{os.TempDir()},
		HTTP: wasm.HTTPConfig{DefaultHostIP: "127.0.0.1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(controlURL)
	if err != nil {
		t.Fatal(err)
	}
	a, err := node.New(node.Config{Name: "n1", DataDir: t.TempDir(), HeartbeatInterval: 200 * time.Millisecond, StatusFlushInterval: 20 * time.Millisecond},
		nc, map[string]runtimes.Runtime{api.RuntimeWasm: rt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sbs, _ := rt.ListSandboxes(context.Background())
		for _, sb := range sbs {
			_ = rt.RemoveSandbox(context.Background(), sb.ID)
		}
		rt.Close()
		nc.Close()
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
}

func waitPodRunning(t *testing.T, url, name string) {
	t.Helper()
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testutil.Eventually(t, 30*time.Second, func() error {
		obj, err := c.Get(context.Background(), "pod", "default", name)
		if err != nil {
			return err
		}
		if p := obj.(*api.Pod); p.Status.Phase != api.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("pod %s: %s", name, p.Status.Phase)
		}
		return nil
	})
}

// kyb exec prints a wasm command's output and exits with its code;
// kyb port-forward serves a local port from a pod's WAGI handler, by pod
// and by Service.
func TestExecAndPortForwardCommands(t *testing.T) {
	url := startCluster(t)
	startWasmAgent(t)
	prog := "file://" + runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, "./runtimes/runtimetest/testprog", "wasip1", "wasm"), filepath.Join(os.TempDir(), "kyb-wasm-test-cache"))
	cgi := "file://" + runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, "./runtimes/wasm/testdata/cgi", "wasip1", "wasm"), filepath.Join(os.TempDir(), "kyb-wasm-test-cache"))
	hostPort := func() int {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	applyText(t, url, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: prog}
spec:
  nodeName: n1
  runtimeClassName: wasm
  containers: [{name: app, image: %q, args: [sleep, forever]}]
---
apiVersion: v1
kind: Pod
metadata: {name: wagi, labels: {app: wagi}}
spec:
  nodeName: n1
  runtimeClassName: wasm
  containers: [{name: app, image: %q, ports: [{name: http, containerPort: 8080, hostPort: %d}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: wagi}
  ports: [{port: 80, targetPort: http}]
`, prog, cgi, hostPort))
	waitPodRunning(t, url, "prog")
	waitPodRunning(t, url, "wagi")

	out, errOut, err := kybOut(url, "exec", "prog", "--", "out", "hello", "err", "warn", "exit", "3")
	var exit ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || out != "hello\n" || errOut != "warn\n" {
		t.Errorf("kyb exec: %q %q %v; want hello, warn and exit 3", out, errOut, err)
	}
	if _, _, err := kybOut(url, "exec", "prog", "out", "x"); err == nil || !strings.Contains(err.Error(), "--") {
		t.Errorf("exec without --: %v", err)
	}
	if _, _, err := kybOut(url, "exec", "gone", "--", "x"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("exec in a pod that is gone: %v", err)
	}

	for _, target := range []string{"pod/wagi", "svc/web"} {
		t.Run("port-forward "+target, func(t *testing.T) {
			remote := "8080"
			if target == "svc/web" {
				remote = "80"
			}
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, []string{"--server", url, "port-forward", target, ":" + remote}, Streams{In: strings.NewReader(""), Out: pw, Err: io.Discard})
				pw.Close()
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			m := regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> 8080\n$`).FindStringSubmatch(line)
			if err != nil || m == nil {
				cancel()
				t.Fatalf("port-forward printed %q, %v", line, err)
			}
			go io.Copy(io.Discard, pr)
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for i := range 3 { // several connections, each its own session
				resp, err := hc.Get("http://" + m[1] + fmt.Sprintf("/status/%d", 200+i))
				if err != nil {
					t.Fatalf("GET through the forward: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200+i || !strings.Contains(string(b), fmt.Sprintf("status %d", 200+i)) {
					t.Errorf("GET: %d %q", resp.StatusCode, b)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("port-forward ended with %v", err)
			}
		})
	}
}
