package dashboard_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/dashboard"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// forgedCreds is a well-formed .creds file for user name whose JWT is
// signed by an account key the cluster never issued.
func forgedCreds(t *testing.T, name string) []byte {
	t.Helper()
	acc, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	tok, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	b, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Without a session nothing is shown; a login needs credentials the NATS
// server accepts.
func TestLogin(t *testing.T) {
	c := startCluster(t, false)
	b := newBrowser(t, c.url)
	if code, _ := b.get("/pods"); code != http.StatusSeeOther {
		t.Fatalf("GET /pods without a session: %d, want a redirect to the login", code)
	}
	for _, path := range []string{"/live/pods", "/logs/default/web"} {
		if code, _ := b.get(path); code != http.StatusUnauthorized {
			t.Fatalf("GET %s without a session: %d, want 401", path, code)
		}
	}
	for _, tc := range []struct {
		name  string
		creds []byte
		ns    string
		code  int
		want  string
	}{
		{"empty", nil, "", 400, "creds: required"},
		{"not creds", []byte("hello"), "", 400, "not a NATS .creds file"},
		{"forged admin", forgedCreds(t, "admin"), "", 401, "refused these credentials"},
		{"bad namespace", adminCreds(t, c.cp), "No_Such", 400, "namespace:"},
		{"4 KB namespace", adminCreds(t, c.cp), strings.Repeat("a", 4096), 400, "namespace:"},
		{"4 KB garbage", []byte(strings.Repeat("x", 4096)), "", 400, "creds:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.post("/login", url.Values{"creds": {string(tc.creds)}, "namespace": {tc.ns}}, nil)
			body := readBody(resp)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("login: %d %q, want %d with %q", resp.StatusCode, body, tc.code, tc.want)
			}
			if len(resp.Cookies()) != 0 {
				t.Fatalf("a refused login set cookies: %v", resp.Cookies())
			}
		})
	}
	// A cross-site login form is refused before anything is checked.
	resp := b.post("/login", url.Values{"creds": {string(adminCreds(t, c.cp))}}, http.Header{"Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin login: %d, want 403", resp.StatusCode)
	}
	resp = b.post("/login", url.Values{"creds": {string(adminCreds(t, c.cp))}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin login: %d %s", resp.StatusCode, readBody(resp))
	}
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == "kyb_session" {
			ck = x
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || len(ck.Value) < 40 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, 256 random bits", ck)
	}
	if code, body := b.get("/nodes"); code != 200 || !strings.Contains(body, ">admin<") {
		t.Fatalf("GET /nodes signed in: %d", code)
	}
	// Signing out ends the session and its connection.
	b.csrf = csrfRE.FindStringSubmatch(mustGet(t, b, "/nodes"))[1]
	if resp := b.post("/logout", url.Values{"csrf": {b.csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if code, _ := b.get("/pods"); code != http.StatusSeeOther {
		t.Fatalf("GET /pods after logout: %d, want a redirect", code)
	}
}

func readBody(resp *http.Response) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

func mustGet(t *testing.T, b *browser, path string) string {
	t.Helper()
	code, body := b.get(path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// A user who may view namespace a sees nothing of namespace b: not in the
// pod list (of b, or of all namespaces), the overview, a pod page, its
// events or logs, nor in the live streams.
func TestViewUserSeesOnlyItsNamespace(t *testing.T) {
	c := startCluster(t, true)
	c.apply(t, namespaceYAML("a")+"---\n"+namespaceYAML("b"))
	c.apply(t, viewBinding("a", "viewer"))
	c.apply(t, podYAML("a", "visible-pod", "fake://run"))
	c.apply(t, podYAML("b", "secret-pod", "fake://run"))
	testutil.Eventually(t, 10*time.Second, func() error {
		obj, err := c.admin.Get(c.ctx, "Pod", "b", "secret-pod")
		if err != nil {
			return err
		}
		if p := obj.(*api.Pod); p.Status.Phase != api.PodRunning {
			return fmt.Errorf("secret-pod is %q", p.Status.Phase)
		}
		return nil
	})
	b := newBrowser(t, c.url)
	if code := b.login(userCreds(t, c.cp, "viewer"), "a"); code != http.StatusSeeOther {
		t.Fatalf("viewer login: %d", code)
	}
	noSecret := func(where, body string) {
		t.Helper()
		if strings.Contains(body, "secret-pod") {
			t.Fatalf("%s shows namespace b's pod to the viewer:\n%s", where, body)
		}
	}
	for _, path := range []string{"/", "/?ns=b", "/pods", "/pods?ns=b", "/workloads?ns=b", "/services?ns=b", "/nodes"} {
		code, body := b.get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		noSecret(path, body)
		if path == "/pods?ns=b" && !strings.Contains(body, "You may not read pods") {
			t.Fatalf("GET %s: no forbidden notice:\n%s", path, body)
		}
		_, ev := b.firstEvent("/live"+path, "render")
		noSecret("/live"+path, ev)
	}
	code, body := b.get("/pods/b/secret-pod")
	if code != 200 || !strings.Contains(body, "You may not read pod") {
		t.Fatalf("GET /pods/b/secret-pod: %d, want the forbidden notice:\n%s", code, body)
	}
	if strings.Contains(body, "fake: app started") || strings.Contains(body, "Started") {
		t.Fatalf("the pod page shows b's pod's events:\n%s", body)
	}
	if _, data := b.firstEvent("/logs/b/secret-pod", "fail"); !strings.Contains(data, "forbidden") && !strings.Contains(data, "Forbidden") {
		t.Fatalf("logs of b's pod: %q, want a forbidden refusal", data)
	}
	// Usage: b's pod's plots and the nodes' are refused, not drawn.
	for _, path := range []string{"/usage?kind=pods&ns=b&name=secret-pod", "/usage?kind=nodes"} {
		code, body := b.get(path)
		if code != 200 || !strings.Contains(body, "You may not read usage") || strings.Contains(body, "<svg") {
			t.Fatalf("GET %s: %d, want the forbidden notice and no plot:\n%s", path, code, body)
		}
	}
	// Namespace a is there, without a delete button (view may not delete).
	body = mustGet(t, b, "/pods?ns=a")
	if !strings.Contains(body, `data-pod="a/visible-pod"`) {
		t.Fatalf("the viewer does not see its own namespace's pod:\n%s", body)
	}
	if strings.Contains(body, `class="delete`) {
		t.Fatalf("the viewer is offered a delete button:\n%s", body)
	}
}

// Actions need the session's CSRF token and a same-origin request; with
// both, RBAC still decides (a viewer's scale is refused by the API).
func TestActionsCSRFAndRBAC(t *testing.T) {
	c := startCluster(t, false)
	c.apply(t, namespaceYAML("a"))
	c.apply(t, viewBinding("a", "viewer"))
	c.apply(t, podYAML("a", "victim", "fake://run"))
	c.apply(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: a}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "fake://run"}]}
`)
	admin := newBrowser(t, c.url)
	if code := admin.login(adminCreds(t, c.cp), ""); code != http.StatusSeeOther || admin.csrf == "" {
		t.Fatalf("admin login: %d (csrf %q)", code, admin.csrf)
	}
	del := url.Values{"kind": {"Pod"}, "namespace": {"a"}, "name": {"victim"}, "back": {"/pods"}}
	stillThere := func() {
		t.Helper()
		if _, err := c.admin.Get(c.ctx, "Pod", "a", "victim"); err != nil {
			t.Fatalf("the pod went: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		csrf string
		hdr  http.Header
	}{
		{"no token", "", nil},
		{"wrong token", "AAAA" + admin.csrf[4:], nil},
		{"cross-site origin", admin.csrf, http.Header{"Origin": {"http://evil.example"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range del {
				f[k] = v
			}
			if tc.csrf != "" {
				f.Set("csrf", tc.csrf)
			}
			if resp := admin.post("/actions/delete", f, tc.hdr); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("delete: %d, want 403", resp.StatusCode)
			}
			stillThere()
		})
	}

	viewer := newBrowser(t, c.url)
	if code := viewer.login(userCreds(t, c.cp, "viewer"), "a"); code != http.StatusSeeOther {
		t.Fatalf("viewer login: %d", code)
	}
	// The viewer's own token, but RBAC says no.
	resp := viewer.post("/actions/scale", url.Values{"csrf": {viewer.csrf}, "kind": {"Deployment"}, "namespace": {"a"}, "name": {"web"}, "replicas": {"5"}},
		http.Header{"Accept": {"application/json"}})
	if body := readBody(resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "viewer") {
		t.Fatalf("viewer scale: %d %s, want 403 naming the viewer", resp.StatusCode, body)
	}
	// Another session's token is not this one's.
	f := url.Values{"csrf": {viewer.csrf}}
	for k, v := range del {
		f[k] = v
	}
	if resp := admin.post("/actions/delete", f, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("admin delete with the viewer's token: %d, want 403", resp.StatusCode)
	}
	stillThere()
	obj, err := c.admin.Get(c.ctx, "Deployment", "a", "web")
	if err != nil {
		t.Fatal(err)
	}
	if r := obj.(*api.Deployment).Spec.Replicas; r == nil || *r != 1 {
		t.Fatalf("replicas changed to %v", r)
	}
	// With everything right, the admin's delete goes through.
	f.Set("csrf", admin.csrf)
	if resp := admin.post("/actions/delete", f, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin delete: %d %s", resp.StatusCode, readBody(resp))
	}
	if _, err := c.admin.Get(c.ctx, "Pod", "a", "victim"); !api.IsNotFound(err) {
		t.Fatalf("after the delete: %v, want NotFound", err)
	}
}

// Bad input gets a 4xx naming the parameter, and changes nothing.
func TestBadInput(t *testing.T) {
	c := startCluster(t, false)
	c.apply(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "fake://run"}]}
`)
	b := newBrowser(t, c.url)
	if code := b.login(adminCreds(t, c.cp), ""); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	long := strings.Repeat("a", 4096)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/pods?ns=" + long, 400, "ns:"},
		{"/pods?ns=UPPER", 400, "ns:"},
		{"/pods?phase=Sleeping", 400, "phase:"},
		{"/pods?runtime=docker", 400, "runtime:"},
		{"/pods?label=" + url.QueryEscape("a=(b"), 400, "label:"},
		{"/pods?label=" + long, 400, "label:"},
		{"/pods/default/" + long, 400, "name:"},
		{"/pods/default/web?container=" + long, 400, "container:"},
		{"/live/pods?ns=" + long, 400, "ns:"},
		{"/logs/default/" + long, 400, "name:"},
		{"/logs/x..y/web", 400, "namespace:"},
		{"/usage?kind=deployments", 400, "kind:"},
		{"/usage?kind=pods&ns=default&name=" + long, 400, "name:"},
		{"/usage?kind=pods&ns=" + long + "&name=web", 400, "ns:"},
		{"/usage?kind=pods&ns=default", 400, "name:"},
	} {
		t.Run(tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
			code, body := b.get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("GET: %d %q, want %d naming %q", code, truncate(body), tc.code, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		action string
		form   url.Values
		code   int
		want   string
	}{
		{"negative replicas", "scale", url.Values{"kind": {"Deployment"}, "namespace": {"default"}, "name": {"web"}, "replicas": {"-1"}}, 400, "replicas:"},
		{"replicas not a number", "scale", url.Values{"kind": {"Deployment"}, "namespace": {"default"}, "name": {"web"}, "replicas": {"3; drop"}}, 400, "replicas:"},
		{"too many replicas", "scale", url.Values{"kind": {"Deployment"}, "namespace": {"default"}, "name": {"web"}, "replicas": {"99999999"}}, 400, "replicas:"},
		{"scale a pod", "scale", url.Values{"kind": {"Pod"}, "namespace": {"default"}, "name": {"web"}, "replicas": {"3"}}, 422, "kind:"},
		{"delete a secret kind", "delete", url.Values{"kind": {"ClusterRoleBinding"}, "namespace": {"default"}, "name": {"x"}}, 422, "kind:"},
		{"4 KB name", "delete", url.Values{"kind": {"Deployment"}, "namespace": {"default"}, "name": {long}}, 400, "name:"},
		{"path in namespace", "restart", url.Values{"kind": {"Deployment"}, "namespace": {"../kube-system"}, "name": {"web"}}, 400, "namespace:"},
		{"missing", "delete", url.Values{"kind": {"Deployment"}, "namespace": {"default"}, "name": {"nope"}}, 404, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", b.csrf)
			resp := b.post("/actions/"+tc.action, tc.form, http.Header{"Accept": {"application/json"}})
			body := readBody(resp)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%s: %d %q, want %d naming %q", tc.action, resp.StatusCode, truncate(body), tc.code, tc.want)
			}
		})
	}
	obj, err := c.admin.Get(c.ctx, "Deployment", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*api.Deployment)
	if *d.Spec.Replicas != 2 || d.Spec.Template.Annotations[api.AnnotationRestartedAt] != "" {
		t.Fatalf("the deployment changed: replicas %d, annotations %v", *d.Spec.Replicas, d.Spec.Template.Annotations)
	}
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// Revoking a user ends their dashboard session at once: the NATS server
// closes the session's connection, and the next request must sign in.
func TestRevokedUserLosesSession(t *testing.T) {
	c := startCluster(t, false)
	c.apply(t, viewBinding("default", "carol"))
	b := newBrowser(t, c.url)
	if code := b.login(c.apiUserCreds(t, "carol"), "default"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	mustGet(t, b, "/pods?ns=default")
	if err := c.admin.Revoke(c.ctx, "user", "carol"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if code, _ := b.get("/pods?ns=default"); code != http.StatusSeeOther {
			return fmt.Errorf("GET /pods after the revocation: %d, want a redirect to the login", code)
		}
		return nil
	})
}

// One session cannot open watches without bound: beyond MaxStreams (8
// here) a live view is refused with 429 until one closes.
func TestStreamsPerSessionBounded(t *testing.T) {
	c := startCluster(t, false)
	b := newBrowser(t, c.url)
	if code := b.login(adminCreds(t, c.cp), ""); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var open []*http.Response
	for i := 0; i < 8; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/live/workloads", nil)
		resp, err := b.hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, resp, err)
		}
		open = append(open, resp)
	}
	code, body := b.get("/live/pods")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "live views open") {
		t.Fatalf("a ninth stream: %d %q, want 429", code, body)
	}
	cancel()
	for _, r := range open {
		r.Body.Close()
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if code, _ := b.firstEvent("/live/pods", "render"); code != 200 {
			return fmt.Errorf("a stream after the others closed: %d", code)
		}
		return nil
	})
}

// With TLS the dashboard speaks HTTPS with the cluster CA's certificate,
// its cookie is Secure, and sessions reach the NATS server over TLS.
func TestTLS(t *testing.T) {
	cp, err := controlplane.Start(context.Background(), controlplane.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLS: "on", Sync: "1s", HTTP: "127.0.0.1:0",
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Shutdown() })
	if !strings.HasPrefix(cp.DashboardURL(), "https://") {
		t.Fatalf("dashboard URL %s, want https", cp.DashboardURL())
	}
	b := newBrowser(t, cp.DashboardURL())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.Authority().CAPEM())
	b.hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	resp := b.post("/login", url.Values{"creds": {string(adminCreds(t, cp))}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login over TLS: %d %s", resp.StatusCode, readBody(resp))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == dashboard.CookieName && !ck.Secure {
			t.Fatalf("the session cookie is not Secure over TLS: %+v", ck)
		}
	}
	if code, body := b.get("/nodes"); code != 200 || !strings.Contains(body, ">admin<") {
		t.Fatalf("GET /nodes over TLS: %d", code)
	}
	// A client that does not trust the cluster CA is refused by TLS.
	if _, err := http.Get(cp.DashboardURL() + "login"); err == nil {
		t.Fatal("a client without the cluster CA reached the dashboard")
	}
}

// The login takes the .creds file as an upload too, and goes back only to
// a page of its own (never to another site).
func TestLoginUploadAndNext(t *testing.T) {
	c := startCluster(t, false)
	for _, tc := range []struct{ next, want string }{
		{"/pods?ns=default", "/pods?ns=default"},
		{"//evil.example/x", "/"},
		{"https://evil.example/", "/"},
		{"/\\evil.example", "/"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			fw, _ := mw.CreateFormFile("credsfile", "admin.creds")
			fw.Write(adminCreds(t, c.cp))
			mw.WriteField("next", tc.next)
			mw.Close()
			b := newBrowser(t, c.url)
			req, _ := http.NewRequest(http.MethodPost, b.base+"/login", &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Origin", b.base)
			resp, err := b.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
				t.Fatalf("upload login: %d to %q, want a redirect to %q", resp.StatusCode, resp.Header.Get("Location"), tc.want)
			}
		})
	}
}

// A pod's log stream waits for the pod to be bound, then tails it; it
// shows the first container of several unless told which; a browser that
// reconnects with Last-Event-ID continues after its last line.
func TestLogStream(t *testing.T) {
	c := startCluster(t, false)
	c.apply(t, podYAML("default", "late", "fake://prog", "out", "first", "sleep", "50ms", "out", "second", "sleep", "forever"))
	c.apply(t, `apiVersion: v1
kind: Pod
metadata: {name: multi}
spec:
  containers:
  - {name: a, image: "fake://prog", args: [out, from-a, sleep, forever]}
  - {name: b, image: "fake://prog", args: [out, from-b, sleep, forever]}
`)
	b := newBrowser(t, c.url)
	if code := b.login(adminCreds(t, c.cp), ""); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	late := b.stream(ctx, "/logs/default/late", nil)
	if ev := next(t, late); ev.name != "wait" {
		t.Fatalf("log of an unbound pod: %+v, want a wait event", ev)
	}
	c.startAgent(t, "n1")
	ev := next(t, late)
	if ev.name != "line" || ev.data != "first" || ev.id == "" {
		t.Fatalf("after binding: %+v, want the line \"first\" with an id", ev)
	}
	if ev2 := next(t, late); ev2.data != "second" {
		t.Fatalf("then %+v, want \"second\"", ev2)
	}
	// Reconnecting after "first" continues with "second".
	again := b.stream(ctx, "/logs/default/late", http.Header{"Last-Event-ID": {ev.id}})
	if ev := next(t, again); ev.name != "line" || ev.data != "second" {
		t.Fatalf("resumed after %s: %+v, want \"second\"", ev.id, ev)
	}
	for _, tc := range []struct{ path, want string }{
		{"/logs/default/multi", "from-a"},
		{"/logs/default/multi?container=b", "from-b"},
	} {
		if ev := next(t, b.stream(ctx, tc.path, nil)); ev.data != tc.want {
			t.Fatalf("%s: %+v, want %q", tc.path, ev, tc.want)
		}
	}
	// A container the pod does not have is refused, by name.
	if ev := next(t, b.stream(ctx, "/logs/default/multi?container=c", nil)); ev.name != "fail" || !strings.Contains(ev.data, "container") {
		t.Fatalf("an unknown container: %+v, want a fail event naming it", ev)
	}
}

// A session past its time ends, and so does the live view it had open
// (the page is told to sign in again); an open view is not "unused".
func TestSessionExpiryEndsLiveView(t *testing.T) {
	cp, err := controlplane.Start(context.Background(), controlplane.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLS: "off", Sync: "1s", HTTP: "127.0.0.1:0",
		Dashboard: dashboard.Config{MaxAge: 600 * time.Millisecond},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Shutdown() })
	b := newBrowser(t, cp.DashboardURL())
	if code := b.login(adminCreds(t, cp), ""); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	ch := b.stream(ctx, "/live/pods", nil)
	if ev := next(t, ch); ev.name != "render" {
		t.Fatalf("first event %+v, want render", ev)
	}
	ev := next(t, ch)
	if ev.name != "logout" {
		t.Fatalf("event %+v, want logout", ev)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("the session ended after %v, before its time", d)
	}
	if code, _ := b.get("/pods"); code != http.StatusSeeOther {
		t.Fatalf("GET /pods after the session ended: %d, want a redirect to the login", code)
	}
}

// The pods page filters by namespace, phase, runtime and label selector.
func TestPodFilters(t *testing.T) {
	c := startCluster(t, true)
	c.apply(t, namespaceYAML("other"))
	c.apply(t, podYAML("default", "web", "fake://run"))
	c.apply(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: done}\nspec:\n  restartPolicy: Never\n  containers: [{name: app, image: \"fake://exit/0\"}]\n")
	c.apply(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: mod, labels: {app: mod}}\nspec:\n  runtimeClassName: wasm\n  restartPolicy: Never\n  containers: [{name: app, image: \"fake://run\"}]\n")
	c.apply(t, podYAML("other", "elsewhere", "fake://run"))
	testutil.Eventually(t, 10*time.Second, func() error {
		obj, err := c.admin.Get(c.ctx, "Pod", "default", "done")
		if err != nil {
			return err
		}
		if p := obj.(*api.Pod); p.Status.Phase != api.PodSucceeded {
			return fmt.Errorf("done is %q", p.Status.Phase)
		}
		return nil
	})
	b := newBrowser(t, c.url)
	if code := b.login(adminCreds(t, c.cp), ""); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	all := []string{"default/web", "default/done", "default/mod", "other/elsewhere"}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", all},
		{"?ns=default", []string{"default/web", "default/done", "default/mod"}},
		{"?ns=default&phase=Succeeded", []string{"default/done"}},
		{"?runtime=wasm", []string{"default/mod"}},
		{"?runtime=containerd&ns=other", []string{"other/elsewhere"}},
		{"?label=" + url.QueryEscape("app in (web,mod)"), []string{"default/web", "default/mod"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			body := mustGet(t, b, "/pods"+tc.query)
			_, live := b.firstEvent("/live/pods"+tc.query, "render")
			for _, p := range all {
				want := slices.Contains(tc.want, p)
				for where, html := range map[string]string{"page": body, "live": live} {
					if got := strings.Contains(html, `data-pod="`+p+`"`); got != want {
						t.Errorf("%s of /pods%s: pod %s shown %v, want %v", where, tc.query, p, got, want)
					}
				}
			}
		})
	}
}

// Restart sets the template's restartedAt annotation (as `kyb rollout
// restart`), through the API as the user; a paused Deployment is refused.
func TestRestart(t *testing.T) {
	c := startCluster(t, false)
	dep := func(name string, paused bool) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  paused: %v
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec: {containers: [{name: app, image: "fake://run"}]}
`, name, paused, name, name)
	}
	c.apply(t, dep("web", false))
	c.apply(t, dep("held", true))
	b := newBrowser(t, c.url)
	if code := b.login(adminCreds(t, c.cp), ""); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	restart := func(name string) (int, string) {
		resp := b.post("/actions/restart", url.Values{"csrf": {b.csrf}, "kind": {"Deployment"}, "namespace": {"default"}, "name": {name}},
			http.Header{"Accept": {"application/json"}})
		return resp.StatusCode, readBody(resp)
	}
	annotation := func(name string) string {
		obj, err := c.admin.Get(c.ctx, "Deployment", "default", name)
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*api.Deployment).Spec.Template.Annotations[api.AnnotationRestartedAt]
	}
	if code, body := restart("web"); code != 200 || !strings.Contains(body, "restarted") {
		t.Fatalf("restart web: %d %s", code, body)
	}
	if annotation("web") == "" {
		t.Fatal("no restartedAt annotation after the restart")
	}
	if code, body := restart("held"); code != 400 || !strings.Contains(body, "paused") {
		t.Fatalf("restart a paused deployment: %d %s, want 400 naming the pause", code, body)
	}
	if annotation("held") != "" {
		t.Fatal("the paused deployment was changed")
	}
}
