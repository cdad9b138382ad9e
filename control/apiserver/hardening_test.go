package apiserver_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// rawRequest sends body on subject with a raw nats.go request, as an
// attacker would (no client library checks), and returns the reply's code
// (0 for a success) and Status.
func rawRequest(t *testing.T, nc *nats.Conn, subject string, body []byte) (int, *api.Status) {
	t.Helper()
	msg, err := nc.Request(subject, body, 10*time.Second)
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return 0, nil
	}
	var st api.Status
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatalf("error body %q: %v", msg.Data, err)
	}
	if fmt.Sprint(st.Code) != code {
		t.Fatalf("code header %s, body code %d", code, st.Code)
	}
	return st.Code, &st
}

// alive checks the server still answers, reads its store, and writes.
func (e *env) alive(t *testing.T, name string) {
	t.Helper()
	e.apply(t, podYAML("", name, nil))
	if _, err := e.c.Get(e.ctx, "pod", "", name); err != nil {
		t.Fatalf("server no longer serves after the attack: %v", err)
	}
}

// TestLongNamesEveryVerb: a 4,100-byte name, namespace or kind on every
// verb is a 4xx naming the field, and the server lives. Before, a get or
// delete made the store's KV subject exceed NATS' 4 KB control line: the
// server closed the control plane's connection and the process exited.
func TestLongNamesEveryVerb(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", 4100)
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	manifest := func(ns, name string) []byte {
		return []byte(fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  containers:\n  - name: app\n    image: nginx\n", name, ns))
	}
	cases := []struct {
		name, subject string
		body          []byte
		field         string
	}{
		{"get name", api.SubjectGet, js(api.GetRequest{Kind: "pod", Name: long}), "name"},
		{"get namespace", api.SubjectGet, js(api.GetRequest{Kind: "pod", Namespace: long, Name: "x"}), "namespace"},
		{"get kind", api.SubjectGet, js(api.GetRequest{Kind: long, Name: "x"}), "kind"},
		{"get node", api.SubjectGet, js(api.GetRequest{Kind: "node", Name: long}), "name"},
		{"get bad chars", api.SubjectGet, js(api.GetRequest{Kind: "pod", Name: "a.*.>"}), "name"},
		{"delete name", api.SubjectDelete, js(api.DeleteRequest{Kind: "pod", Name: long}), "name"},
		{"delete namespace", api.SubjectDelete, js(api.DeleteRequest{Kind: "pod", Namespace: long, Name: "x"}), "namespace"},
		{"delete node", api.SubjectDelete, js(api.DeleteRequest{Kind: "node", Name: long}), "name"},
		{"delete namespace object", api.SubjectDelete, js(api.DeleteRequest{Kind: "namespace", Name: long}), "name"},
		{"list namespace", api.SubjectList, js(api.ListRequest{Kind: "pod", Namespace: long}), "namespace"},
		{"list kind", api.SubjectList, js(api.ListRequest{Kind: long}), "kind"},
		{"apply name", api.SubjectApply, manifest("default", long), "metadata.name"},
		{"apply namespace", api.SubjectApply, manifest(long, "x"), "metadata.namespace"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, st := rawRequest(t, e.nc, tc.subject, tc.body)
			if code < 400 || code >= 500 {
				t.Fatalf("code %d (%v), want 4xx", code, st)
			}
			found := false
			for _, c := range st.Causes {
				found = found || c.Field == tc.field
			}
			if !found {
				t.Fatalf("status %+v does not name field %s", st, tc.field)
			}
			if len(st.Message)+len(st.Name) > 1024 {
				t.Fatalf("the refusal echoes the 4 KB input (%d bytes of message)", len(st.Message))
			}
			e.alive(t, fmt.Sprintf("alive-%d", i))
		})
	}
}

// TestNodeVerbsLongNames: the node verbs take the node's name from the
// subject; a name no node can have (4,000 bytes fit in a subject but not in
// a KV key subject) is a 400, and so is a pod status naming such a pod.
func TestNodeVerbsLongNames(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("n", 4000)
	for i, verb := range []string{api.NodeVerbRegister, api.NodeVerbHeartbeat, api.NodeVerbStatus, api.NodeVerbPodStatus, api.NodeVerbSync, api.NodeVerbServiceWatch} {
		t.Run(verb, func(t *testing.T) {
			body := []byte(`{}`)
			if verb == api.NodeVerbPodStatus {
				body = []byte(`{"items":[]}`)
			}
			code, st := rawRequest(t, e.nc, api.NodeSubject(long, verb), body)
			if code != 400 {
				t.Fatalf("code %d (%v), want 400", code, st)
			}
			e.alive(t, fmt.Sprintf("alive-%d", i))
		})
	}
	t.Run("podstatus items", func(t *testing.T) {
		for i, item := range []api.PodStatusUpdate{{Name: long}, {Namespace: long, Name: "x"}} {
			b, _ := json.Marshal(api.PodStatusBatch{Items: []api.PodStatusUpdate{{Name: "ok"}, item}})
			code, st := rawRequest(t, e.nc, api.NodeSubject("n1", api.NodeVerbPodStatus), b)
			if code != 400 || len(st.Causes) == 0 || !strings.HasPrefix(st.Causes[0].Field, "items[1].") {
				t.Fatalf("code %d (%+v), want 400 naming items[1]", code, st)
			}
			e.alive(t, fmt.Sprintf("alive-ps-%d", i))
		}
	})
}

// TestRequestSizeLimit: every kyb.api.v1 request over 1 MiB is a 413
// naming the size and the limit, checked before decoding; node payloads
// are not held to it (a node's pod status may be larger).
func TestRequestSizeLimit(t *testing.T) {
	e := newEnv(t)
	big := make([]byte, api.MaxRequestBytes+1)
	for i := range big {
		big[i] = ' '
	}
	want := fmt.Sprintf("request of %d bytes exceeds the limit of %d bytes", len(big), api.MaxRequestBytes)
	for _, subject := range []string{api.SubjectApply, api.SubjectGet, api.SubjectList, api.SubjectDelete} {
		t.Run(subject, func(t *testing.T) {
			code, st := rawRequest(t, e.nc, subject, big)
			if code != 413 || st.Reason != api.ReasonTooLarge || !strings.Contains(st.Message, want) {
				t.Fatalf("code %d %+v, want 413 %q", code, st, want)
			}
		})
	}
	t.Run("exactly the limit is decoded", func(t *testing.T) {
		code, st := rawRequest(t, e.nc, api.SubjectGet, big[:api.MaxRequestBytes])
		if code != 400 {
			t.Fatalf("code %d %+v, want 400 (empty request)", code, st)
		}
	})
	t.Run("node payload over 1 MiB", func(t *testing.T) {
		code, st := rawRequest(t, e.nc, api.NodeSubject("n1", api.NodeVerbPodStatus), big)
		if code == 413 {
			t.Fatalf("node pod status held to the user limit: %+v", st)
		}
	})
	t.Run("client", func(t *testing.T) {
		_, err := e.c.Apply(e.ctx, big)
		want := fmt.Sprintf("manifest of %d bytes exceeds the limit of %d bytes (1 MiB)", len(big), api.MaxRequestBytes)
		if api.ReasonOf(err) != api.ReasonTooLarge || err.Error() != want {
			t.Fatalf("client apply: %v, want %q", err, want)
		}
	})
	e.alive(t, "alive")
}

// TestOverlongReplySubject: a request whose reply subject is too long to
// publish on is dropped, and the server lives.
func TestOverlongReplySubject(t *testing.T) {
	e := newEnv(t)
	inbox := "_INBOX." + strings.Repeat("r", 4000)
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.PublishRequest(api.SubjectGet, inbox, []byte(`{"kind":"pod","name":"nope"}`)); err != nil {
		t.Fatal(err)
	}
	e.alive(t, "alive")
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("got a reply on an overlong inbox: %s", m.Data)
	}
}
