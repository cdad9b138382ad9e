package dashboard_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/dashboard"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// cluster is a real control plane serving the dashboard, with one agent
// (node n1) over the fake runtime standing in for containerd and wasm.
type cluster struct {
	cp    *controlplane.ControlPlane
	url   string // the dashboard's, with a trailing /
	admin *client.Client
	ctx   context.Context
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("KYB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startCluster(t testing.TB, withAgent bool) *cluster {
	t.Helper()
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLS: "off", Sync: "1s", HTTP: "127.0.0.1:0",
		Dashboard: dashboard.Config{MaxStreams: 8},
	}, testLogger(t))
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() { _ = cp.Shutdown() })
	nc, err := connect(cp, adminCreds(t, cp), "admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &cluster{cp: cp, url: cp.DashboardURL(), admin: client.New(nc, client.WithTimeout(10*time.Second)), ctx: ctx}
	if withAgent {
		c.startAgent(t, "n1")
	}
	return c
}

func connect(cp *controlplane.ControlPlane, creds []byte, name string) (*nats.Conn, error) {
	o, err := client.CredsOption(creds)
	if err != nil {
		return nil, err
	}
	return nats.Connect(cp.ClientURL(), o, nats.CustomInboxPrefix(api.InboxPrefix(name)))
}

func adminCreds(t testing.TB, cp *controlplane.ControlPlane) []byte {
	t.Helper()
	b, err := cp.Authority().AdminCreds()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func userCreds(t testing.TB, cp *controlplane.ControlPlane, name string) []byte {
	t.Helper()
	b, err := cp.Authority().UserCreds(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiUserCreds makes user name through the API, as `kyb user create`
// does (so a revocation finds its key), and returns its .creds file.
func (c *cluster) apiUserCreds(t testing.TB, name string) []byte {
	t.Helper()
	dir := t.TempDir()
	if _, err := client.CreateUser(c.ctx, c.admin, name, c.cp.ClientURL(), dir); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".creds"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *cluster) startAgent(t testing.TB, name string) {
	t.Helper()
	tok, _, err := c.cp.Tokens().Create(c.ctx, time.Hour, "test agent")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := client.Join(c.ctx, c.cp.ClientURL(), tok, name)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	conn, err := connect(c.cp, nc.Creds, name)
	if err != nil {
		t.Fatalf("agent connect: %v", err)
	}
	t.Cleanup(conn.Close)
	rts := map[string]runtimes.Runtime{}
	for _, rt := range []string{api.RuntimeContainerd, api.RuntimeWasm} {
		r, err := fake.New(fake.Config{Name: rt}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		rts[rt] = r
	}
	agent, err := node.New(node.Config{Name: name, DataDir: t.TempDir(), HeartbeatInterval: 500 * time.Millisecond,
		StatusFlushInterval: 10 * time.Millisecond, LogPollInterval: 20 * time.Millisecond,
		StatsInterval: 200 * time.Millisecond}, conn, rts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-agent.Ready():
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}
}

func (c *cluster) apply(t testing.TB, manifest string) {
	t.Helper()
	if _, err := c.admin.Apply(c.ctx, []byte(manifest)); err != nil {
		t.Fatalf("apply: %v\n%s", err, manifest)
	}
}

func podYAML(ns, name, image string, args ...string) string {
	s := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\nspec:\n  containers:\n  - name: app\n    image: %q\n", name, ns, name, image)
	if len(args) > 0 {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = fmt.Sprintf("%q", a)
		}
		s += "    args: [" + strings.Join(q, ", ") + "]\n"
	}
	return s
}

func namespaceYAML(name string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n"
}

// viewBinding lets user read namespace ns (Kubernetes' view ClusterRole).
func viewBinding(ns, user string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %s-view, namespace: %s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: %s}]
`, user, ns, user)
}

// browser is an HTTP client with a session, as a browser would hold it.
type browser struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: strings.TrimSuffix(base, "/"), hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login signs in with creds and returns the response's status.
func (b *browser) login(creds []byte, namespace string) int {
	b.t.Helper()
	form := url.Values{"creds": {string(creds)}, "namespace": {namespace}}
	resp := b.post("/login", form, nil)
	if resp.StatusCode == http.StatusSeeOther {
		// The CSRF token is on every page.
		_, body := b.get("/nodes")
		if m := csrfRE.FindStringSubmatch(body); m != nil {
			b.csrf = m[1]
		}
	}
	return resp.StatusCode
}

func (b *browser) post(path string, form url.Values, hdr http.Header) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// firstEvent reads a server-sent event stream until the first event named
// name and returns its data (or the status and body of a refusal).
func (b *browser) firstEvent(path, name string) (int, string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	event, data := "", []string{}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == name {
				return resp.StatusCode, strings.Join(data, "\n")
			}
			event, data = "", nil
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	b.t.Fatalf("GET %s: no %q event (%v)", path, name, sc.Err())
	return 0, ""
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, name, data string }

// stream reads a server-sent event stream (with header hdr) until ctx
// ends; the channel closes at its end.
func (b *browser) stream(ctx context.Context, path string, hdr http.Header) <-chan sseEvent {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		b.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ev.data = strings.Join(data, "\n")
					select {
					case ch <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return ch
}

// next returns the next event of ch, failing the test after 10s.
func next(t testing.TB, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}
