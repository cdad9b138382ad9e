package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/namespace"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// env is one test's cluster: a real embedded JetStream server, the store,
// a running apiserver and a client over its own connection.
type env struct {
	ns  *testutil.Server
	nc  *nats.Conn // the client's connection
	js  jetstream.JetStream
	st  *store.Store
	hb  *store.Heartbeats
	srv *apiserver.Server
	c   *client.Client
	ctx context.Context
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := testutil.StartNATS(t)
	return newEnvOn(t, s, apiserver.Config{})
}

func newEnvOn(t testing.TB, s *testutil.Server, cfg apiserver.Config) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// In-process connections, as control/controlplane makes them; the store
	// has its own, so the API's requests and the store's writes do not
	// queue behind each other.
	snc := testutil.Connect(t, s, nats.Name("apiserver"), nats.InProcessServer(s.Server))
	js, err := jetstream.New(testutil.Connect(t, s, nats.Name("store"), nats.InProcessServer(s.Server)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, js, store.Config{Logger: logger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	hb, err := store.OpenHeartbeats(ctx, js, 2*time.Second)
	if err != nil {
		t.Fatalf("open heartbeats: %v", err)
	}
	srv, err := apiserver.New(snc, st, hb, cfg, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop apiserver: %v", err)
		}
	})
	// The namespace controller, which finishes deleting namespaces, runs
	// beside the apiserver as in control/controlplane.
	mgr := framework.NewManager(st, logger(t))
	mgr.Add("namespace", namespace.New(mgr, st, namespace.Config{DefaultGracePeriod: cfg.DefaultGracePeriod}, logger(t)))
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-mgrDone; err != nil {
			t.Errorf("controllers: %v", err)
		}
	})
	nc := testutil.Connect(t, s, nats.Name("client"))
	return &env{ns: s, nc: nc, js: js, st: st, hb: hb, srv: srv, c: client.New(nc, client.WithTimeout(10*time.Second)), ctx: ctx}
}

func podYAML(ns, name string, labels map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n", name)
	if ns != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", ns)
	}
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "    %s: %s\n", k, labels[k])
		}
	}
	b.WriteString("spec:\n  containers:\n  - name: app\n    image: nginx:1.27\n")
	return b.String()
}

func (e *env) apply(t testing.TB, manifest string) *api.ApplyReply {
	t.Helper()
	r, err := e.c.Apply(e.ctx, []byte(manifest))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return r
}

func actions(r *api.ApplyReply) []string {
	var out []string
	for _, res := range r.Results {
		out = append(out, res.Kind+"/"+res.Name+" "+res.Action)
	}
	return out
}

func (e *env) pod(t testing.TB, ns, name string) *api.Pod {
	t.Helper()
	obj, err := e.c.Get(e.ctx, "pod", ns, name)
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return obj.(*api.Pod)
}

// bind sets a pod's nodeName straight in the store, as the scheduler does.
func (e *env) bind(t testing.TB, ns, name, node string) *api.Pod {
	t.Helper()
	obj, err := e.st.Get(e.ctx, api.KindOf(&api.Pod{}), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	p := obj.(*api.Pod)
	p.Spec.NodeName = node
	if err := e.st.Update(e.ctx, p); err != nil {
		t.Fatalf("bind %s/%s to %s: %v", ns, name, node, err)
	}
	return p
}

func TestApplyCreateConfigureUnchanged(t *testing.T) {
	e := newEnv(t)
	r := e.apply(t, podYAML("", "web", map[string]string{"app": "web"}))
	if got := actions(r); !slices.Equal(got, []string{"Pod/web created"}) {
		t.Fatalf("first apply: %v", got)
	}
	var created api.Pod
	if err := json.Unmarshal(r.Results[0].Object, &created); err != nil {
		t.Fatal(err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.Namespace != "default" || created.Kind != "Pod" {
		t.Fatalf("created object lacks server metadata: %+v", created.ObjectMeta)
	}

	// The scheduler binds it and the agent reports status: apply must keep both.
	e.bind(t, "default", "web", "n1")
	obj, _ := e.st.Get(e.ctx, api.KindOf(&api.Pod{}), "default", "web")
	p := obj.(*api.Pod)
	p.Status.Phase = api.PodRunning
	if err := e.st.Update(e.ctx, p); err != nil {
		t.Fatal(err)
	}

	testutil.Eventually(t, 5*time.Second, func() error {
		r := e.apply(t, podYAML("", "web", map[string]string{"app": "web"}))
		if got := r.Results[0].Action; got != api.ActionUnchanged {
			return fmt.Errorf("re-apply: %s, want unchanged", got)
		}
		return nil
	})

	r = e.apply(t, podYAML("", "web", map[string]string{"app": "web", "tier": "front"}))
	if got := actions(r); !slices.Equal(got, []string{"Pod/web configured"}) {
		t.Fatalf("apply with new label: %v", got)
	}
	got := e.pod(t, "default", "web")
	if got.Labels["tier"] != "front" || got.Spec.NodeName != "n1" || got.Status.Phase != api.PodRunning || got.UID != created.UID {
		t.Fatalf("configured pod lost state: labels=%v node=%q phase=%q uid=%q", got.Labels, got.Spec.NodeName, got.Status.Phase, got.UID)
	}
	if got.ResourceVersion == p.ResourceVersion {
		t.Fatalf("resourceVersion did not change")
	}
}

func TestApplyMultiDocument(t *testing.T) {
	e := newEnv(t)
	manifest := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n" +
		podYAML("shop", "cart", nil) + "---\n" + podYAML("shop", "pay", nil)
	r := e.apply(t, manifest)
	want := []string{"Namespace/shop created", "Pod/cart created", "Pod/pay created"}
	if got := actions(r); !slices.Equal(got, want) {
		t.Fatalf("apply: %v, want %v", got, want)
	}
	r = e.apply(t, manifest)
	want = []string{"Namespace/shop unchanged", "Pod/cart unchanged", "Pod/pay unchanged"}
	if got := actions(r); !slices.Equal(got, want) {
		t.Fatalf("re-apply: %v, want %v", got, want)
	}
	items, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods", Namespace: "shop"})
	if err != nil || len(items) != 2 {
		t.Fatalf("list shop pods: %d items, %v", len(items), err)
	}
}

func TestApplyAllOrNothing(t *testing.T) {
	good := podYAML("", "good", nil)
	cases := []struct {
		name     string
		manifest string
		code     int
		fields   []string // each must prefix a cause's field
	}{
		{name: "malformed yaml", manifest: "kind: Pod\nmetadata: [\n", code: 400},
		{name: "unknown kind", manifest: "apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n", code: 400, fields: []string{"kind"}},
		{name: "bad name", manifest: podYAML("", "Bad_Name", nil), code: 422, fields: []string{"metadata.name"}},
		{name: "limits below requests", code: 422, fields: []string{"spec.containers[0].resources"},
			manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lim\nspec:\n  containers:\n  - name: a\n    image: busybox\n    resources:\n      requests:\n        cpu: \"2\"\n      limits:\n        cpu: \"1\"\n"},
		{name: "duplicate container names", code: 422, fields: []string{"spec.containers[1].name"},
			manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: dup\nspec:\n  containers:\n  - name: a\n    image: busybox\n  - name: a\n    image: alpine\n"},
		{name: "missing namespace", manifest: podYAML("nowhere", "p", nil), code: 404, fields: []string{"metadata.namespace"}},
		{name: "one good two bad documents", code: 422,
			manifest: good + "---\n" + podYAML("", "Bad_Name", nil) + "---\n" +
				"apiVersion: v1\nkind: Pod\nmetadata:\n  name: dup\nspec:\n  containers:\n  - name: a\n    image: busybox\n  - name: a\n    image: alpine\n",
			fields: []string{"documents[1].metadata.name", "documents[2].spec.containers[1].name"}},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.Apply(e.ctx, []byte(tc.manifest))
			var st *api.Status
			if !errors.As(err, &st) {
				t.Fatalf("apply: want *api.Status, got %T %v", err, err)
			}
			t.Logf("%d %s %+v", st.Code, st.Message, st.Causes)
			if st.Code != tc.code {
				t.Fatalf("code %d (%s), want %d", st.Code, st.Message, tc.code)
			}
			for _, f := range tc.fields {
				if !slices.ContainsFunc(st.Causes, func(c api.StatusCause) bool { return strings.HasPrefix(c.Field, f) }) {
					t.Errorf("no cause with field %q in %+v", f, st.Causes)
				}
			}
			items, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods", AllNamespaces: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 0 {
				t.Fatalf("invalid apply stored %d pods", len(items))
			}
		})
	}
}

// The error reply is a micro error: code and message in the headers, the
// Status in the body, so that `nats req` shows it too.
func TestErrorReplyHeaders(t *testing.T) {
	e := newEnv(t)
	msg, err := e.nc.Request(api.SubjectGet, []byte(`{"kind":"pod","name":"nope"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(micro.ErrorCodeHeader); got != "404" {
		t.Fatalf("error code header %q, want 404", got)
	}
	if got := msg.Header.Get(micro.ErrorHeader); !strings.Contains(got, `"nope" not found`) {
		t.Fatalf("error header %q", got)
	}
	var st api.Status
	if err := json.Unmarshal(msg.Data, &st); err != nil || st.Reason != api.ReasonNotFound {
		t.Fatalf("body %s: %v", msg.Data, err)
	}
	if _, err := e.c.Get(e.ctx, "pod", "", "nope"); !api.IsNotFound(err) {
		t.Fatalf("client get: %v, want NotFound", err)
	}
	if _, err := e.c.Get(e.ctx, "frob", "", "x"); api.ReasonOf(err) != api.ReasonBadRequest {
		t.Fatalf("get unknown kind: %v, want BadRequest", err)
	}
}

func TestGetList(t *testing.T) {
	e := newEnv(t)
	e.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n")
	for i := range 5 {
		app := "web"
		if i%2 == 1 {
			app = "db"
		}
		e.apply(t, podYAML("", fmt.Sprintf("p%d", i), map[string]string{"app": app}))
	}
	e.apply(t, podYAML("other", "o1", map[string]string{"app": "web"}))
	e.bind(t, "default", "p0", "n1")
	e.bind(t, "other", "o1", "n1")

	names := func(objs []api.Object) []string {
		var out []string
		for _, o := range objs {
			m := o.GetObjectMeta()
			out = append(out, m.Namespace+"/"+m.Name)
		}
		return out
	}
	cases := []struct {
		name string
		req  api.ListRequest
		want []string
	}{
		{"default namespace", api.ListRequest{Kind: "pods"}, []string{"default/p0", "default/p1", "default/p2", "default/p3", "default/p4"}},
		{"one namespace", api.ListRequest{Kind: "po", Namespace: "other"}, []string{"other/o1"}},
		{"all namespaces", api.ListRequest{Kind: "pod", AllNamespaces: true}, []string{"default/p0", "default/p1", "default/p2", "default/p3", "default/p4", "other/o1"}},
		{"label selector", api.ListRequest{Kind: "pods", AllNamespaces: true, LabelSelector: "app=web"}, []string{"default/p0", "default/p2", "default/p4", "other/o1"}},
		{"label selector set", api.ListRequest{Kind: "pods", LabelSelector: "app in (db)"}, []string{"default/p1", "default/p3"}},
		{"field selector nodeName", api.ListRequest{Kind: "pods", AllNamespaces: true, FieldSelector: "spec.nodeName=n1"}, []string{"default/p0", "other/o1"}},
		{"field selector unbound", api.ListRequest{Kind: "pods", FieldSelector: "spec.nodeName="}, []string{"default/p1", "default/p2", "default/p3", "default/p4"}},
		{"paged", api.ListRequest{Kind: "pods", Limit: 2}, []string{"default/p0", "default/p1"}},
		{"namespaces", api.ListRequest{Kind: "ns"}, []string{"/default", "/other"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testutil.Eventually(t, 5*time.Second, func() error {
				objs, rv, err := e.c.List(e.ctx, tc.req)
				if err != nil {
					return err
				}
				if rv == "" {
					return fmt.Errorf("no resourceVersion")
				}
				if got := names(objs); !slices.Equal(got, tc.want) {
					return fmt.Errorf("got %v, want %v", got, tc.want)
				}
				return nil
			})
		})
	}

	t.Run("pages chain", func(t *testing.T) {
		var all []string
		req := api.ListRequest{Kind: "pods", AllNamespaces: true, Limit: 4}
		for {
			msg, err := e.nc.Request(api.SubjectList, must(json.Marshal(req)), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var r api.ListReply
			if err := json.Unmarshal(msg.Data, &r); err != nil {
				t.Fatal(err)
			}
			for _, it := range r.Items {
				var p api.Pod
				_ = json.Unmarshal(it, &p)
				all = append(all, p.Name)
			}
			if r.Continue == "" {
				break
			}
			req.Continue = r.Continue
		}
		if want := []string{"p0", "p1", "p2", "p3", "p4", "o1"}; !slices.Equal(all, want) {
			t.Fatalf("pages: %v, want %v", all, want)
		}
	})

	for _, bad := range []api.ListRequest{{Kind: "pods", FieldSelector: "spec.image=x"}, {Kind: "pods", LabelSelector: "a in ("}, {Kind: "gizmos"}} {
		if _, _, err := e.c.List(e.ctx, bad); api.ReasonOf(err) != api.ReasonBadRequest {
			t.Errorf("list %+v: %v, want BadRequest", bad, err)
		}
	}

	obj, err := e.c.Get(e.ctx, "pods", "other", "o1")
	if err != nil || obj.(*api.Pod).Spec.NodeName != "n1" {
		t.Fatalf("get other/o1: %v %v", obj, err)
	}
	obj, err = e.c.Get(e.ctx, "namespace", "", "other")
	if err != nil || obj.GetObjectMeta().Name != "other" {
		t.Fatalf("get namespace: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// registerNode registers a node through the agent protocol.
func (e *env) registerNode(t testing.TB, name string, in *api.Node) *api.Node {
	t.Helper()
	if in == nil {
		in = &api.Node{}
	}
	b, err := e.c.Request(e.ctx, api.NodeSubject(name, api.NodeVerbRegister), must(json.Marshal(in)))
	if err != nil {
		t.Fatalf("register node %s: %v", name, err)
	}
	var n api.Node
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

func (e *env) podStatus(t testing.TB, node string, items ...api.PodStatusUpdate) {
	t.Helper()
	b, err := e.c.Request(e.ctx, api.NodeSubject(node, api.NodeVerbPodStatus), must(json.Marshal(api.PodStatusBatch{Items: items})))
	if err != nil {
		t.Fatalf("pod status from %s: %v", node, err)
	}
	if string(b) != `{"ok":true}` {
		t.Fatalf("pod status reply %s", b)
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	e.registerNode(t, "n1", nil)
	e.apply(t, podYAML("", "loose", nil))
	e.apply(t, podYAML("", "bound", nil))
	e.bind(t, "default", "bound", "n1")

	t.Run("unbound pod is removed at once", func(t *testing.T) {
		obj, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "loose"})
		if err != nil || obj.GetObjectMeta().Name != "loose" {
			t.Fatalf("delete: %v %v", obj, err)
		}
		if _, err := e.c.Get(e.ctx, "pod", "", "loose"); !api.IsNotFound(err) {
			t.Fatalf("get after delete: %v", err)
		}
		if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "loose"}); !api.IsNotFound(err) {
			t.Fatalf("second delete: %v, want NotFound", err)
		}
	})

	t.Run("bound pod waits for its agent", func(t *testing.T) {
		grace := int64(7)
		obj, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "bound", GracePeriodSeconds: &grace})
		if err != nil {
			t.Fatal(err)
		}
		p := obj.(*api.Pod)
		if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 7 {
			t.Fatalf("pod not marked for deletion: %+v", p.ObjectMeta)
		}
		p = e.pod(t, "default", "bound")
		if p.DeletionTimestamp == nil {
			t.Fatalf("stored pod not marked")
		}
		// A report with a stale UID changes nothing; another node may not finalize it.
		e.podStatus(t, "n1", api.PodStatusUpdate{Namespace: "default", Name: "bound", UID: "stale", Finalized: true})
		e.podStatus(t, "n2", api.PodStatusUpdate{Namespace: "default", Name: "bound", UID: p.UID, Finalized: true})
		e.pod(t, "default", "bound")
		e.podStatus(t, "n1", api.PodStatusUpdate{Namespace: "default", Name: "bound", UID: p.UID, Finalized: true})
		if _, err := e.c.Get(e.ctx, "pod", "", "bound"); !api.IsNotFound(err) {
			t.Fatalf("finalized pod still there: %v", err)
		}
	})

	t.Run("grace period 0 forces", func(t *testing.T) {
		e.apply(t, podYAML("", "stuck", nil))
		e.bind(t, "default", "stuck", "n1")
		zero := int64(0)
		if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "stuck", GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.Get(e.ctx, "pod", "", "stuck"); !api.IsNotFound(err) {
			t.Fatalf("force-deleted pod: %v", err)
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "ns", Name: "default"}); api.ReasonOf(err) != api.ReasonForbidden {
			t.Fatalf("delete default namespace: %v, want Forbidden", err)
		}
		e.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tmp\n---\n"+podYAML("tmp", "a", nil)+"---\n"+podYAML("tmp", "b", nil))
		e.bind(t, "tmp", "b", "n1")
		obj, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "namespace", Name: "tmp"})
		if err != nil {
			t.Fatal(err)
		}
		if ns := obj.(*api.Namespace); ns.Status.Phase != api.NamespaceTerminating {
			t.Fatalf("namespace with a running pod: phase %q, want Terminating", ns.Status.Phase)
		}
		if _, err := e.c.Get(e.ctx, "pod", "tmp", "a"); !api.IsNotFound(err) {
			t.Fatalf("unbound pod of deleted namespace: %v", err)
		}
		if _, err := e.c.Apply(e.ctx, []byte(podYAML("tmp", "c", nil))); err == nil || !strings.Contains(err.Error(), "being terminated") {
			t.Fatalf("apply into terminating namespace: %v", err)
		}
		b := e.pod(t, "tmp", "b")
		e.podStatus(t, "n1", api.PodStatusUpdate{Namespace: "tmp", Name: "b", UID: b.UID, Finalized: true})
		testutil.Eventually(t, 10*time.Second, func() error {
			if _, err := e.c.Get(e.ctx, "ns", "", "tmp"); !api.IsNotFound(err) {
				return fmt.Errorf("namespace still there: %v", err)
			}
			return nil
		})
	})
}

func recvEvent(t testing.TB, ch <-chan client.Event) client.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return client.Event{}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	pods, err := e.c.Watch(ctx, "pods", "default")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := e.c.Watch(ctx, "nodes", "")
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, podYAML("", "w", nil))
	ev := recvEvent(t, pods)
	if ev.Type != api.EventAdded || ev.Object.GetObjectMeta().Name != "w" {
		t.Fatalf("event %s %s, want ADDED w", ev.Type, ev.Object.GetObjectMeta().Name)
	}
	// A change made straight in the store (the scheduler's bind) is published too.
	e.bind(t, "default", "w", "n9")
	ev = recvEvent(t, pods)
	if ev.Type != api.EventModified || ev.Object.(*api.Pod).Spec.NodeName != "n9" {
		t.Fatalf("event %s node %q, want MODIFIED n9", ev.Type, ev.Object.(*api.Pod).Spec.NodeName)
	}
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "w"}); err != nil {
		t.Fatal(err) // n9 is no node: removed at once
	}
	ev = recvEvent(t, pods)
	if ev.Type != api.EventDeleted || ev.Object.GetObjectMeta().Name != "w" {
		t.Fatalf("event %s, want DELETED w", ev.Type)
	}
	e.registerNode(t, "n1", nil)
	ev = recvEvent(t, nodes)
	if ev.Type != api.EventAdded || ev.Object.GetObjectMeta().Name != "n1" {
		t.Fatalf("node event %s %s", ev.Type, ev.Object.GetObjectMeta().Name)
	}
}

// Status is the cluster's: a manifest's status is ignored.
func TestApplyIgnoresStatus(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podYAML("", "s", nil)+"status:\n  phase: Running\n  podIP: 1.2.3.4\n")
	if p := e.pod(t, "default", "s"); p.Status.Phase != api.PodPending || p.Status.PodIP != "" {
		t.Fatalf("status from manifest was stored: %+v", p.Status)
	}
}

// Concurrent applies of one object all succeed: compare-and-set conflicts
// are retried, and the last write wins whole.
func TestApplyConcurrentConflicts(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podYAML("", "hot", nil))
	const writers = 8
	errs := make(chan error, writers)
	for i := range writers {
		c := client.New(testutil.Connect(t, e.ns))
		go func() {
			for j := range 5 {
				r, err := c.Apply(e.ctx, []byte(podYAML("", "hot", map[string]string{"writer": fmt.Sprintf("w%d", i), "round": fmt.Sprintf("r%d", j)})))
				if err != nil {
					errs <- err
					return
				}
				if a := r.Results[0].Action; a != api.ActionConfigured && a != api.ActionUnchanged {
					errs <- fmt.Errorf("action %s", a)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent apply: %v", err)
		}
	}
	p := e.pod(t, "default", "hot")
	if p.Labels["writer"] == "" || p.Labels["round"] != "r4" {
		t.Fatalf("after concurrent applies: labels %v", p.Labels)
	}
}
