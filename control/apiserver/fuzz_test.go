package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// Fuzz targets for every payload the apiserver decodes. Each must never
// panic, and whatever it accepts must be fit to become part of a key or
// subject. Seeds are in testdata/fuzz/<target>; CI runs each briefly:
//
//	go test ./control/apiserver -run '^$' -fuzz '^FuzzGetRequest$' -fuzztime 10s

// maxKeySubject bounds the KV subject an accepted name may make, far below
// NATS' 4 KB control line.
const maxKeySubject = 1024

// fitForKey fails the test when kind, namespace and name accepted by a
// parser could not be stored under a key, or would make too long a subject.
func fitForKey(t *testing.T, k *api.Kind, ns, name string) {
	t.Helper()
	if k == nil {
		t.Fatal("accepted without a kind")
	}
	if msgs := api.ValidateName(k, name); len(msgs) > 0 {
		t.Fatalf("accepted name %q: %v", name, msgs)
	}
	if len(ns) > store.MaxNamespaceLen || (k.Namespaced && ns == "") {
		t.Fatalf("accepted namespace %q for %s", ns, k.Name)
	}
	// Escaping at most triples a byte.
	if n := len("$KV.kyb-objects.") + len(k.Name) + 3*len(ns) + 3*len(name) + 2; n > maxKeySubject {
		t.Fatalf("accepted a name making a %d-byte subject", n)
	}
}

// isStatus fails the test when a refusal is not an api.Status with a 4xx code.
func isStatus(t *testing.T, err error) {
	t.Helper()
	var st *api.Status
	if !errors.As(err, &st) || st.Code < 400 || st.Code >= 500 {
		t.Fatalf("refusal %v (%T) is not a 4xx Status", err, err)
	}
}

func FuzzGetRequest(f *testing.F) {
	for _, s := range []string{
		`{"kind":"pod","name":"web"}`, `{"kind":"po","namespace":"shop","name":"cart"}`, `{"kind":"node","name":"n1"}`,
		`{"kind":"pod","name":"` + strings.Repeat("a", 4100) + `"}`, `{"kind":"Pod","namespace":"a.b","name":"x"}`,
		`{"kind":"pod","name":"a.*.>"}`, `{}`, `null`, `[]`, ``, `{"kind":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, ns, name, _, err := parseGet(data)
		if err != nil {
			isStatus(t, err)
			return
		}
		fitForKey(t, k, ns, name)
	})
}

func FuzzListRequest(f *testing.F) {
	for _, s := range []string{
		`{"kind":"pods"}`, `{"kind":"pods","allNamespaces":true,"labelSelector":"app=web,tier!=db","fieldSelector":"spec.nodeName=n1"}`,
		`{"kind":"pods","labelSelector":"app in (a,b),!gone","limit":5,"continue":"default/p1"}`,
		`{"kind":"pods","labelSelector":"((("}`, `{"kind":"pods","fieldSelector":"spec.containers=x"}`,
		`{"kind":"pods","fieldSelector":"metadata.name==` + strings.Repeat("a", 4100) + `"}`,
		`{"kind":"nodes","namespace":"` + strings.Repeat("n", 100) + `"}`, `{"kind":"pods","limit":-1}`, `{"kind":"pods","continue":"` + strings.Repeat("c", 600) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := parseList(data)
		if err != nil {
			isStatus(t, err)
			return
		}
		if q.k == nil || len(q.ns) > store.MaxNamespaceLen || q.limit < 0 || len(q.cont) > maxContinueLen {
			t.Fatalf("accepted %+v", q)
		}
		// Match as the handler does, against a pod with labels and fields.
		if q.sel != nil {
			q.sel.Matches(fuzzPod)
		}
	})
}

var fuzzPod = &api.Pod{
	ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web", "tier": "front"}},
	Spec:       api.PodSpec{NodeName: "n1"},
	Status:     api.PodStatus{Phase: api.PodRunning},
}

func FuzzDeleteRequest(f *testing.F) {
	for _, s := range []string{
		`{"kind":"pod","name":"web","gracePeriodSeconds":0}`, `{"kind":"ns","name":"default"}`, `{"kind":"node","name":"n1"}`,
		`{"kind":"pod","name":"web","preconditions":{"uid":"u","resourceVersion":"7"}}`,
		`{"kind":"pod","name":"web","preconditions":{"resourceVersion":"x"}}`, `{"kind":"pod","name":"web","preconditions":{"uid":""}}`,
		`{"kind":"pod","name":"web","gracePeriodSeconds":-1}`, `{"kind":"pod","name":"` + strings.Repeat("a", 4100) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, k, ns, err := parseDelete(data)
		if err != nil {
			isStatus(t, err)
			return
		}
		fitForKey(t, k, ns, r.Name)
		if p := r.Preconditions; p != nil && p.ResourceVersion != nil && !validRV(*p.ResourceVersion) {
			t.Fatalf("accepted precondition resourceVersion %q", *p.ResourceVersion)
		}
	})
}

// fuzzServer is a Server over a real store that is never started: enough
// for prepareApply, which reads the cache and the store.
func fuzzServer(f *testing.F) *Server {
	s := testutil.StartNATS(f)
	nc := testutil.Connect(f, s)
	js, err := jetstream.New(nc)
	if err != nil {
		f.Fatal(err)
	}
	st, err := store.Open(context.Background(), js, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(nc, st, nil, Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	return srv
}

func FuzzApply(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","resourceVersion":"7"},"spec":{"containers":[{"name":"a","image":"i"}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","resourceVersion":"x"},"spec":{"containers":[{"name":"a","image":"i"}]}}`,
		"apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  taints:\n  - {key: k, effect: NoSchedule}\n",
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + strings.Repeat("a", 4100) + "\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  namespace: " + strings.Repeat("n", 4100) + "\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
		"---\n---\n", "kind: [", "a: &a [*a, *a]\n", "{}",
	} {
		f.Add([]byte(s))
	}
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > api.MaxRequestBytes {
			return // refused by the gate before decoding
		}
		docs, err := srv.prepareApply(context.Background(), data)
		if err != nil {
			var st *api.Status
			if !errors.As(err, &st) || st.Code < 400 || st.Code >= 500 {
				t.Fatalf("refusal %v (%T) is not a 4xx Status", err, err)
			}
			return
		}
		if len(docs) == 0 {
			t.Fatal("accepted a manifest without documents")
		}
		for _, d := range docs {
			m := d.obj.GetObjectMeta()
			fitForKey(t, d.kind, m.Namespace, m.Name)
		}
	})
}

// nodeSeeds are node names (the subject token) and bodies for the node
// payload targets.
func nodeSeeds(f *testing.F, bodies ...string) {
	for _, node := range []string{"n1", "node-a", "", "UPPER", "a.b", strings.Repeat("n", 4000)} {
		for _, b := range bodies {
			f.Add(node, []byte(b))
		}
	}
}

func FuzzNodeRegister(f *testing.F) {
	nodeSeeds(f, `{}`, `{"metadata":{"name":"other"}}`,
		`{"metadata":{"labels":{"zone":"a"}},"spec":{"taints":[{"key":"gpu","effect":"NoSchedule"}]},"status":{"capacity":{"cpu":"4","memory":"8Gi"}}}`,
		`{"status":{"capacity":{"cpu":"-1"}}}`, `{"spec":{"taints":[{"key":"","effect":"Bad"}]}}`, `null`)
	f.Fuzz(func(t *testing.T, node string, data []byte) {
		n, err := parseRegister(api.NodeSubject(node, api.NodeVerbRegister), data)
		if err != nil {
			isStatus(t, err)
			return
		}
		fitForKey(t, nodeKind, "", n.Name)
		if n.Name != node {
			t.Fatalf("node %q registered as %q", node, n.Name)
		}
	})
}

func FuzzHeartbeat(f *testing.F) {
	nodeSeeds(f, ``, `{}`, `{"time":"2026-01-01T00:00:00Z"}`, `{"time":"yesterday"}`, `[`)
	f.Fuzz(func(t *testing.T, node string, data []byte) {
		got, err := parseHeartbeat(api.NodeSubject(node, api.NodeVerbHeartbeat), data)
		if err != nil {
			isStatus(t, err)
			return
		}
		fitForKey(t, nodeKind, "", got)
	})
}

func FuzzNodeStatus(f *testing.F) {
	nodeSeeds(f, `{}`, `{"conditions":[{"type":"Ready","status":"True"}],"capacity":{"cpu":"4","memory":"8Gi","pods":"110"}}`,
		`{"capacity":{"memory":"-5"}}`, `{"capacity":{"cpu":"1e400"}}`, `{"nodeInfo":{"runtimes":[{"name":"wasm"}]}}`)
	f.Fuzz(func(t *testing.T, node string, data []byte) {
		got, _, err := parseNodeStatus(api.NodeSubject(node, api.NodeVerbStatus), data)
		if err != nil {
			isStatus(t, err)
			return
		}
		fitForKey(t, nodeKind, "", got)
	})
}

func FuzzPodStatusBatch(f *testing.F) {
	nodeSeeds(f, `{"items":[]}`, `{"items":[{"namespace":"default","name":"web","uid":"u","status":{"phase":"Running","podIP":"10.42.0.5"}}]}`,
		`{"items":[{"name":"web","finalized":true}]}`, `{"items":[{"name":""}]}`, `{"items":[{"namespace":"`+strings.Repeat("n", 4100)+`","name":"x"}]}`, `{"items":null}`)
	f.Fuzz(func(t *testing.T, node string, data []byte) {
		got, batch, err := parsePodStatus(api.NodeSubject(node, api.NodeVerbPodStatus), data)
		if err != nil {
			isStatus(t, err)
			return
		}
		fitForKey(t, nodeKind, "", got)
		for _, u := range batch.Items {
			ns := u.Namespace
			if ns == "" {
				ns = api.DefaultNamespace
			}
			fitForKey(t, podKind, ns, u.Name)
		}
	})
}
