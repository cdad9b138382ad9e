package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/execwire"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// execAccountsConfig is testutil.AccountsConfig with what exec needs of
// the control plane's real account layout (control/auth): the API's
// replies may be streams, the agents' subjects are a stream the nodes
// import, and a second node and user.
const execAccountsConfig = `
no_auth_user: cp
accounts {
  CP: {
    jetstream: enabled
    users: [{user: cp, password: cp}]
    exports: [{service: "kyb.api.v1.>", response_type: stream, response_threshold: "5m"}, {service: "kyb.node.>"}, {stream: "kyb.agent.>"}]
  }
  USERS: {
    users: [{user: bob, password: bob}, {user: admin, password: admin}, {user: eve, password: eve}]
    imports: [{service: {account: CP, subject: "kyb.api.v1.>"}, share: true}]
  }
  NODES: {
    users: [{user: "system:node:n1", password: n1}, {user: "system:node:n2", password: n2}]
    imports: [{service: {account: CP, subject: "kyb.node.>"}, share: true}, {stream: {account: CP, subject: "kyb.agent.>"}}]
  }
}
`

var wasmCache = filepath.Join(os.TempDir(), "kyb-wasm-test-cache")

func wasmModuleRef(t testing.TB, pkg string) string {
	t.Helper()
	return "file://" + runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, pkg, "wasip1", "wasm"), wasmCache)
}

// execEnv is an apiserver behind real accounts with the agent n1 running
// wasm pods, and clients for admin, bob and eve.
type execEnv struct {
	*env
	admin, bob, eve *client.Client
	users           func(user string) *nats.Conn
}

func newExecEnv(t testing.TB) *execEnv {
	s := testutil.StartNATSConfig(t, execAccountsConfig)
	e := newEnvOn(t, s, apiserver.Config{ExecPing: 50 * time.Millisecond})
	rt, err := wasm.New(wasm.Config{StateDir: t.TempDir(), CacheDir: wasmCache, ModuleDirs: []string{os.TempDir()},
		HTTP: wasm.HTTPConfig{DefaultHostIP: "127.0.0.1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := node.New(node.Config{Name: "n1", DataDir: t.TempDir(), HeartbeatInterval: 200 * time.Millisecond, StatusFlushInterval: 20 * time.Millisecond},
		testutil.Connect(t, s, nats.UserInfo("system:node:n1", "n1")), map[string]runtimes.Runtime{api.RuntimeWasm: rt}, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sbs, _ := rt.ListSandboxes(context.Background())
		for _, sb := range sbs {
			_ = rt.RemoveSandbox(context.Background(), sb.ID)
		}
		rt.Close()
	})
	select {
	case <-agent.Ready():
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}
	conn := func(user string) *nats.Conn { return testutil.Connect(t, s, nats.UserInfo(user, user)) }
	cl := func(user string) *client.Client { return client.New(conn(user), client.WithTimeout(10*time.Second)) }
	return &execEnv{env: e, admin: cl("admin"), bob: cl("bob"), eve: cl("eve"), users: conn}
}

// runningWasmPod applies a wasm pod bound to n1 and waits until it runs.
func (e *execEnv) runningWasmPod(t testing.TB, name, image, extra string) *api.Pod {
	t.Helper()
	e.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  runtimeClassName: wasm
  containers:
  - name: app
    image: %s
%s`, name, image, extra))
	e.bind(t, "default", name, "n1")
	testutil.Eventually(t, 30*time.Second, func() error {
		p := e.pod(t, "default", name)
		if p.Status.Phase != api.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("pod %s: phase %q, containers %+v", name, p.Status.Phase, p.Status.ContainerStatuses)
		}
		return nil
	})
	return e.pod(t, "default", name)
}

func (e *execEnv) exec(c *client.Client, kind string, req api.ExecRequest, stdin string) (string, string, int32, error) {
	var out, errOut bytes.Buffer
	sio := client.ExecIO{Stdout: &out, Stderr: &errOut}
	if stdin != "" {
		sio.Stdin = strings.NewReader(stdin)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	code, err := c.Exec(ctx, kind, req, sio)
	return out.String(), errOut.String(), code, err
}

// TestExecThroughTheAPI: a user's kyb exec reaches the agent through the
// apiserver across the NATS accounts (no port on the node), with the
// command's output and exit code; port-forward reaches a wasm pod's WAGI
// handler; RBAC decides (403 without pods/exec, and view does not grant
// it); bad input is a clear 4xx at once.
func TestExecThroughTheAPI(t *testing.T) {
	e := newExecEnv(t)
	e.runningWasmPod(t, "prog", wasmModuleRef(t, "./runtimes/runtimetest/testprog"), `    args: ["sleep", "forever"]
    env: [{name: GREETING, value: hi}]
`)
	t.Run("exec", func(t *testing.T) {
		out, errOut, code, err := e.exec(e.admin, api.SessionExec, api.ExecRequest{Pod: "prog", Command: []string{"out", "hello", "env", "GREETING", "err", "oops", "exit", "3"}}, "")
		if err != nil || code != 3 || out != "hello\nGREETING=hi\n" || errOut != "oops\n" {
			t.Errorf("exec: %q %q code %d, %v", out, errOut, code, err)
		}
	})
	t.Run("403 without pods/exec", func(t *testing.T) {
		_, _, _, err := e.exec(e.bob, api.SessionExec, api.ExecRequest{Pod: "prog", Command: []string{"out", "x"}}, "")
		wantCode(t, "bob execs", err, 403, `user "bob" cannot create resource "pods/exec"`)
		e.grantEventually(t, roleBindingYAML("default", "bob-view", "ClusterRole", "view", "bob"), func() error {
			_, err := e.bob.Get(e.ctx, "pod", "default", "prog")
			return err
		})
		_, _, _, err = e.exec(e.bob, api.SessionExec, api.ExecRequest{Pod: "prog", Command: []string{"out", "x"}}, "")
		wantCode(t, "a view user execs", err, 403, "pods/exec")
		_, _, _, err = e.exec(e.bob, api.SessionPortForward, api.ExecRequest{Pod: "prog", Port: 8080}, "")
		wantCode(t, "a view user port-forwards", err, 403, "pods/portforward")
		e.grantEventually(t, roleBindingYAML("default", "bob-edit", "ClusterRole", "edit", "bob"), func() error {
			_, _, _, err := e.exec(e.bob, api.SessionExec, api.ExecRequest{Pod: "prog", Command: []string{"out", "x"}}, "")
			return err
		})
	})
	t.Run("bad input", func(t *testing.T) {
		e.apply(t, podYAML("", "unbound", nil))
		long := strings.Repeat("a", 4096)
		for _, tc := range []struct {
			name string
			kind string
			req  api.ExecRequest
			code int
			want string
		}{
			{"pod that is gone", api.SessionExec, api.ExecRequest{Pod: "gone", Command: []string{"x"}}, 404, `"gone" not found`},
			{"container not in the pod", api.SessionExec, api.ExecRequest{Pod: "prog", Container: "nope", Command: []string{"x"}}, 400, `"nope" is not in pod prog`},
			{"pod not scheduled", api.SessionExec, api.ExecRequest{Pod: "unbound", Command: []string{"x"}}, 400, "not scheduled"},
			{"no command", api.SessionExec, api.ExecRequest{Pod: "prog"}, 400, "command: required"},
			{"4 KB pod name", api.SessionExec, api.ExecRequest{Pod: long, Command: []string{"x"}}, 400, "pod:"},
			{"too many args", api.SessionExec, api.ExecRequest{Pod: "prog", Command: make([]string, api.MaxExecArgs+1)}, 400, "arguments exceed"},
			{"port 0", api.SessionPortForward, api.ExecRequest{Pod: "prog"}, 400, "port: 0"},
			{"port 70000", api.SessionPortForward, api.ExecRequest{Pod: "prog", Port: 70000}, 400, "port: 70000"},
			{"zero terminal", api.SessionExec, api.ExecRequest{Pod: "prog", Command: []string{"x"}, TTY: true, Size: &api.TermSize{}}, 400, "size:"},
			{"attach -i without stdin", api.SessionAttach, api.ExecRequest{Pod: "prog", Stdin: true}, 400, "container app was not created with stdin: true"},
			{"attach with a command", api.SessionAttach, api.ExecRequest{Pod: "prog", Command: []string{"x"}}, 400, "not for attach"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				start := time.Now()
				stdin := ""
				if tc.req.Stdin {
					stdin = "x\n"
				}
				_, _, _, err := e.exec(e.admin, tc.kind, tc.req, stdin)
				wantCode(t, tc.name, err, tc.code, tc.want)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("answered after %v", d)
				}
			})
		}
	})
	t.Run("port-forward to WAGI", func(t *testing.T) {
		e.runningWasmPod(t, "wagi", wasmModuleRef(t, "./runtimes/wasm/testdata/cgi"), fmt.Sprintf(`    ports: [{name: http, containerPort: 8080, hostPort: %d}]
`, execFreePort(t)))
		out, _, code, err := e.exec(e.admin, api.SessionPortForward, api.ExecRequest{Pod: "wagi", Port: 8080},
			"GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if err != nil || code != 0 || !strings.Contains(out, "202 Accepted") {
			t.Errorf("port-forward: %q code %d, %v", out, code, err)
		}
	})
}

func execFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rawSession opens an exec session by hand as user and returns its id and
// its frames.
func (e *execEnv) rawSession(t *testing.T, nc *nats.Conn, req api.ExecRequest) (string, chan *nats.Msg) {
	t.Helper()
	inbox := nc.NewRespInbox()
	frames := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(inbox, frames)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	b, _ := json.Marshal(req)
	if err := nc.PublishMsg(&nats.Msg{Subject: api.SubjectExec, Reply: inbox, Data: b}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-frames:
		if err := client.ReplyError(m); err != nil {
			t.Fatalf("open session: %v", err)
		}
		if m.Header.Get(api.ExecFrameHeader) != api.FrameStarted {
			t.Fatalf("first frame %q", m.Header.Get(api.ExecFrameHeader))
		}
		return m.Header.Get(api.ExecSessionHeader), frames
	case <-time.After(20 * time.Second):
		t.Fatal("no start frame")
	}
	return "", nil
}

// TestExecSessionIsolation: another user cannot write into (or
// close) a session, even knowing its id; a node cannot speak in another
// node's session; session ids are 128 random bits; a client that goes
// silent has its session ended.
func TestExecSessionIsolation(t *testing.T) {
	e := newExecEnv(t)
	e.runningWasmPod(t, "prog", wasmModuleRef(t, "./runtimes/runtimetest/testprog"), `    args: ["sleep", "forever"]
`)
	e.grantEventually(t, roleBindingYAML("default", "eve-edit", "ClusterRole", "edit", "eve"), func() error {
		_, _, _, err := e.exec(e.eve, api.SessionExec, api.ExecRequest{Pod: "prog", Command: []string{"out", "x"}}, "")
		return err
	})
	admin := e.users("admin")
	id, frames := e.rawSession(t, admin, api.ExecRequest{Pod: "prog", Command: []string{"sleep", "1s", "out", "done"}})
	if !regexpHex32(id) {
		t.Errorf("session id %q: want 32 hex digits", id)
	}
	pinger := time.NewTicker(20 * time.Millisecond)
	defer pinger.Stop()
	ping := func() { _ = admin.PublishMsg(execwire.Msg(api.SubjectExecInput, id, api.FramePing, nil)) }

	// eve (who may exec herself) tries to close admin's session.
	eve := e.users("eve")
	reply, err := eve.RequestMsg(execwire.Msg(api.SubjectExecInput, id, api.FrameClose, nil), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "eve closes admin's session", client.ReplyError(reply), 404)
	// Frames a client may not send, and ids that are no session.
	for _, tc := range []struct {
		name, id, frame string
		code            int
	}{
		{"a start frame", id, api.FrameStart, 400},
		{"an exit frame", id, api.FrameExit, 400},
		{"a 4 KB session id", strings.Repeat("f", 4096), api.FramePing, 404},
		{"no session id", "", api.FramePing, 404},
	} {
		reply, err := admin.RequestMsg(execwire.Msg(api.SubjectExecInput, tc.id, tc.frame, nil), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, tc.name, client.ReplyError(reply), tc.code)
	}
	// n2 claims to end n1's session, on its own subject and on n1's.
	n2 := e.users2("system:node:n2", "n2", t)
	exit, _ := json.Marshal(api.ExecExit{ExitCode: 99})
	_ = n2.PublishMsg(execwire.Msg(api.NodeSubject("n2", api.NodeVerbExec), id, api.FrameExit, exit))
	_ = n2.PublishMsg(execwire.Msg(api.NodeSubject("n1", api.NodeVerbExec), id, api.FrameStdout, []byte("forged")))
	var out bytes.Buffer
	deadline := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case <-pinger.C:
			ping()
		case m := <-frames:
			switch m.Header.Get(api.ExecFrameHeader) {
			case api.FrameStdout:
				out.Write(m.Data)
				_ = admin.PublishMsg(execwire.CreditMsg(api.SubjectExecInput, id, execwire.Cost(len(m.Data))))
			case api.FrameExit:
				var x api.ExecExit
				_ = json.Unmarshal(m.Data, &x)
				if x.ExitCode != 0 || x.Error != nil {
					t.Errorf("exit %+v; want 0 (the forged exit and close must not count)", x)
				}
				done = true
			}
		case <-deadline:
			t.Fatal("no exit")
		}
	}
	if out.String() != "done\n" {
		t.Errorf("output %q; want done (nothing forged)", out.String())
	}

	// A client that goes silent: the apiserver ends its session.
	id, frames = e.rawSession(t, admin, api.ExecRequest{Pod: "prog", Command: []string{"loop"}})
	timeout := time.After(10 * time.Second)
	for ended := false; !ended; {
		select {
		case m := <-frames:
			if m.Header.Get(api.ExecFrameHeader) == api.FrameExit {
				var x api.ExecExit
				_ = json.Unmarshal(m.Data, &x)
				if x.Error == nil || x.Error.Code != 408 {
					t.Errorf("silent client's exit: %+v; want a 408", x)
				}
				ended = true
			}
		case <-timeout:
			t.Fatal("a silent client's session was not ended")
		}
	}
	// It is gone: frames for it are refused.
	reply, err = admin.RequestMsg(execwire.Msg(api.SubjectExecInput, id, api.FramePing, nil), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "ping an ended session", client.ReplyError(reply), 404)
}

func regexpHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func (e *execEnv) users2(user, pass string, t *testing.T) *nats.Conn {
	return testutil.Connect(t, e.ns, nats.UserInfo(user, pass))
}
