package apiserver_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/authn"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestIdentityAcrossServiceImports runs the apiserver behind real NATS
// accounts: the NATS server, not the client, says who asks.
func TestIdentityAcrossServiceImports(t *testing.T) {
	s := testutil.StartNATSConfig(t, testutil.AccountsConfig)
	e := newEnvOn(t, s, apiserver.Config{})
	connect := func(user, pass string) *client.Client {
		nc := testutil.Connect(t, s, nats.UserInfo(user, pass))
		return client.New(nc, client.WithTimeout(10*time.Second))
	}
	bob, admin := connect("bob", "bob"), connect("admin", "admin")
	e.apply(t, podYAML("", "web", nil))

	// bob is known by his NATS user and holds nothing.
	r, err := bob.CanI(e.ctx, api.AuthzRequest{Verb: "get", Kind: "pods"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Allowed || r.Reason != `user "bob" cannot get resource "pods" in namespace "default"` {
		t.Fatalf("bob can-i get pods: %+v", r)
	}
	_, err = bob.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "web"})
	wantCode(t, "bob deletes", err, 403, `user "bob"`)

	// A forged header does not cross the import: the server sets its own.
	forged, _ := json.Marshal(map[string]any{"acc": authn.AccountUsers, "user": "admin"})
	msg := &nats.Msg{Subject: api.SubjectDelete, Data: []byte(`{"kind":"pod","name":"web"}`), Header: nats.Header{}}
	msg.Header.Set(authn.RequestInfoHeader, string(forged))
	reply, err := bob.Conn().RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "bob claims to be admin", client.ReplyError(reply), 403, `user "bob"`)
	// Nor do the tricks that dodge the server's removal of a sender's own
	// header: a header value that holds the key twice (the server stops
	// looking), or the key in another case (decoded as the same key).
	// Header order varies from request to request: try many times.
	for i := range 20 {
		for _, h := range []nats.Header{
			{"X": {"Nats-Request-InfoNats-Request-Info"}, authn.RequestInfoHeader: {string(forged)}},
			{"nats-request-info": {string(forged)}},
		} {
			msg := &nats.Msg{Subject: api.SubjectDelete, Data: []byte(`{"kind":"pod","name":"web","gracePeriodSeconds":0}`), Header: h}
			reply, err := bob.Conn().RequestMsg(msg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := client.ReplyError(reply); !api.IsForbidden(err) && api.ReasonOf(err) != api.ReasonUnauthorized {
				t.Fatalf("forged header %d %v: %v; want 403 or 401", i, h, err)
			}
		}
	}
	if _, err := e.c.Get(e.ctx, "pod", "default", "web"); err != nil {
		t.Fatalf("the pod is gone: %v", err)
	}

	// admin is cluster-admin through the built-in kyb-admin binding.
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := admin.Apply(e.ctx, []byte(roleBindingYAML("default", "bob-view", "ClusterRole", "view", "bob")))
		return err
	})
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := bob.Get(e.ctx, "pod", "default", "web")
		return err
	})
	_, err = bob.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "web"})
	wantCode(t, "bob with view deletes", err, 403)

	// Nodes: n1 may speak for itself only.
	n1 := testutil.Connect(t, s, nats.UserInfo("system:node:n1", "n1"))
	node := []byte(`{"status":{"conditions":[{"type":"Ready","status":"True"}]}}`)
	if _, err := client.New(n1).Request(e.ctx, api.NodeSubject("n1", api.NodeVerbRegister), node); err != nil {
		t.Fatalf("n1 registers: %v", err)
	}
	_, err = client.New(n1).Request(e.ctx, api.NodeSubject("n2", api.NodeVerbRegister), node)
	wantCode(t, "n1 registers as n2", err, 403, `"system:node:n1" may not speak for node "n2"`)
	// A user cannot reach node verbs at all (no import): no responders.
	_, err = bob.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbSync), nil)
	wantCode(t, "bob on a node subject", err, 503)
}
