package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// podEvent is an event a node's agent records about pod ns/name.
func podEvent(ns, name, reason, msg string) api.Event {
	return api.Event{
		InvolvedObject: api.ObjectReference{Kind: "Pod", Namespace: ns, Name: name},
		Type:           api.EventTypeNormal, Reason: reason, Message: msg,
		Source: api.EventSource{Component: api.ComponentKubelet},
	}
}

// recordAs sends ev on kyb.node.<node>.events as p and returns the event as
// stored.
func (e *env) recordAs(t *testing.T, p principal, node string, ev api.Event) (*api.Event, error) {
	t.Helper()
	b, err := e.reqJSON(t, p, api.NodeSubject(node, api.NodeVerbEvents), ev)
	if err != nil {
		return nil, err
	}
	var out api.Event
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode stored event: %v", err)
	}
	return &out, nil
}

func (e *env) events(t *testing.T, fieldSel string) []*api.Event {
	t.Helper()
	evs, err := e.c.Events(e.ctx, "default", false, fieldSel)
	if err != nil {
		t.Fatalf("list events %q: %v", fieldSel, err)
	}
	return evs
}

// A node records events about the pods bound to it, folded with their
// repeats; about any other pod, or as another node, it is refused and
// nothing is stored.
func TestNodeRecordsEventsOfItsPodsOnly(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podOnNode("web", "n1"))
	e.apply(t, podOnNode("db", "n2"))
	e.apply(t, podYAML("", "pending", nil))
	uid := e.pod(t, "default", "web").UID

	first, err := e.recordAs(t, nodeP("n1"), "n1", podEvent("default", "web", "Pulled", "image ready"))
	if err != nil {
		t.Fatalf("n1 records an event of its pod: %v", err)
	}
	if first.Count != 1 || first.InvolvedObject.UID != uid || first.Source.Host != "n1" || first.Source.Component != api.ComponentKubelet {
		t.Fatalf("stored event: %+v", first)
	}
	again, err := e.recordAs(t, nodeP("n1"), "n1", podEvent("default", "web", "Pulled", "image ready"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Name != first.Name || again.Count != 2 || !again.FirstTimestamp.Equal(first.FirstTimestamp) || again.LastTimestamp.Before(first.LastTimestamp) {
		t.Fatalf("repeat: %+v, want the first (%s) with count 2", again, first.Name)
	}

	for _, tc := range []struct {
		name string
		p    principal
		node string
		ev   api.Event
		code int
	}{
		{"another node's pod", nodeP("n2"), "n2", podEvent("default", "web", "Killing", "x"), 403},
		{"speaking for another node", nodeP("n2"), "n1", podEvent("default", "web", "Killing", "x"), 403},
		{"an unbound pod", nodeP("n1"), "n1", podEvent("default", "pending", "Killing", "x"), 403},
		{"a missing pod", nodeP("n1"), "n1", podEvent("default", "nope", "Killing", "x"), 403},
		{"a node, not a pod", nodeP("n1"), "n1", api.Event{InvolvedObject: api.ObjectReference{Kind: "Node", Name: "n1"},
			Type: api.EventTypeNormal, Reason: "Starting", Source: api.EventSource{Component: "kubelet"}}, 403},
		{"a 4 KB involvedObject name", nodeP("n1"), "n1", podEvent("default", strings.Repeat("a", 4096), "Killing", "x"), 422},
		{"a 2 KB message", nodeP("n1"), "n1", podEvent("default", "web", "Killing", strings.Repeat("m", 2048)), 422},
		{"no reason", nodeP("n1"), "n1", podEvent("default", "web", "", "x"), 422},
		{"bad type", nodeP("n1"), "n1", func() api.Event { ev := podEvent("default", "web", "Killing", "x"); ev.Type = "Fatal"; return ev }(), 422},
		{"wildcard namespace", nodeP("n1"), "n1", podEvent(">", "web", "Killing", "x"), 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.recordAs(t, tc.p, tc.node, tc.ev)
			wantCode(t, tc.name, err, tc.code)
		})
	}
	evs := e.events(t, "")
	if len(evs) != 1 || evs[0].Reason != "Pulled" || evs[0].Count != 2 {
		t.Fatalf("events after refusals: %+v, want only Pulled x2", evs)
	}
	if evs[0].ResourceVersion == "" || evs[0].Kind != "Event" {
		t.Fatalf("listed event lacks its kind or resourceVersion: %+v", evs[0])
	}
}

// kyb.api.v1.list of kind Event takes Kubernetes' event field selectors;
// an unknown field is a 400 naming the field; events are neither applied
// nor deleted.
func TestListEventsFieldSelector(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podOnNode("web", "n1"))
	e.apply(t, podOnNode("api", "n1"))
	for _, ev := range []api.Event{
		podEvent("default", "web", "Pulled", "a"), podEvent("default", "web", "Started", "b"), podEvent("default", "api", "Started", "c"),
	} {
		if _, err := e.recordAs(t, nodeP("n1"), "n1", ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		sel  string
		want string
	}{
		{"", "Pulled/web,Started/web,Started/api"},
		{"involvedObject.name=web", "Pulled/web,Started/web"},
		{"involvedObject.name=web,involvedObject.kind=Pod", "Pulled/web,Started/web"},
		{"involvedObject.kind=Node", ""},
		{"reason=Started", "Started/web,Started/api"},
		{"involvedObject.name!=web,type=Normal", "Started/api"},
	} {
		var got []string
		for _, ev := range e.events(t, tc.sel) {
			got = append(got, ev.Reason+"/"+ev.InvolvedObject.Name)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("field selector %q: %v, want %s", tc.sel, got, tc.want)
		}
	}
	_, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "events", FieldSelector: "spec.nodeName=n1"})
	wantCode(t, "unsupported field", err, 400, "fieldSelector", "spec.nodeName")
	_, _, err = e.c.List(e.ctx, api.ListRequest{Kind: "events", Namespace: strings.Repeat("n", 300)})
	wantCode(t, "long namespace", err, 400, "namespace")

	_, err = e.c.Apply(e.ctx, []byte("apiVersion: v1\nkind: Event\nmetadata:\n  name: forged\ninvolvedObject:\n  kind: Pod\n  name: web\nreason: Hacked\n"))
	if st := (*api.Status)(nil); !errors.As(err, &st) || st.Code/100 != 4 {
		t.Fatalf("apply of an Event: %v, want a 4xx", err)
	}
	_, err = e.c.Delete(e.ctx, api.DeleteRequest{Kind: "event", Name: "web.0123456789abcdef"})
	wantCode(t, "delete an event", err, 405)
	if got := len(e.events(t, "")); got != 3 {
		t.Fatalf("%d events after apply and delete, want 3", got)
	}
}

// A watch of kind Event sends the current events, then each new one as
// ADDED and each repeat as MODIFIED with its count, filtered by the field
// selector.
func TestWatchEvents(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podOnNode("web", "n1"))
	e.apply(t, podOnNode("api", "n1"))
	if _, err := e.recordAs(t, nodeP("n1"), "n1", podEvent("default", "web", "Pulled", "a")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w, err := e.c.WatchFrom(ctx, api.WatchRequest{Kind: "events", FieldSelector: "involvedObject.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	next := func() (string, *api.Event) {
		t.Helper()
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			return ev.Type, ev.Object.(*api.Event)
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event in 10s")
		}
		return "", nil
	}
	if typ, ev := next(); typ != api.EventAdded || ev.Reason != "Pulled" {
		t.Fatalf("initial: %s %+v", typ, ev)
	}
	record := func(ev api.Event) {
		t.Helper()
		if _, err := e.recordAs(t, nodeP("n1"), "n1", ev); err != nil {
			t.Fatal(err)
		}
	}
	// The repeat is recorded only once the new event came through: the
	// stream keeps the latest of each event, so a watch that starts
	// reading after both writes rightly sees only the count of 2.
	record(podEvent("default", "api", "Started", "x"))
	record(podEvent("default", "web", "Started", "s"))
	if typ, ev := next(); typ != api.EventAdded || ev.Reason != "Started" || ev.InvolvedObject.Name != "web" || ev.Count != 1 {
		t.Fatalf("new event: %s %+v", typ, ev)
	}
	record(podEvent("default", "web", "Started", "s"))
	if typ, ev := next(); typ != api.EventModified || ev.Count != 2 {
		t.Fatalf("repeat: %s %+v", typ, ev)
	}
}

// A pod deleted lately still takes the last events of its node (Killing
// arrives as it goes), named by its UID; no other node's, and not without
// the UID (a new pod of the name may come).
func TestEventsOfADeletedPod(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podOnNode("web", "n1"))
	uid := e.pod(t, "default", "web").UID
	zero := int64(0)
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "web", GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	killing := func(uid string) api.Event {
		ev := podEvent("default", "web", "Killing", "Stopping container app")
		ev.InvolvedObject.UID = uid
		return ev
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := e.c.Get(e.ctx, "pod", "", "web"); !api.IsNotFound(err) {
			return fmt.Errorf("pod still there: %v", err)
		}
		_, err := e.recordAs(t, nodeP("n1"), "n1", killing(uid))
		return err
	})
	for _, tc := range []struct {
		name string
		node string
		uid  string
	}{
		{"without the UID", "n1", ""},
		{"another UID", "n1", "other"},
		{"another node", "n2", uid},
	} {
		_, err := e.recordAs(t, nodeP(tc.node), tc.node, killing(tc.uid))
		wantCode(t, tc.name, err, 403)
	}
	if evs := e.events(t, "involvedObject.name=web"); len(evs) != 1 || evs[0].Reason != "Killing" || evs[0].InvolvedObject.UID != uid {
		t.Fatalf("events %+v, want n1's Killing", evs)
	}
}

// Events are read under RBAC on "events": list and watch need their verbs
// (the view role has them), in the namespace asked for.
func TestEventsRBAC(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podOnNode("web", "n1"))
	if _, err := e.recordAs(t, nodeP("n1"), "n1", podEvent("default", "web", "Pulled", "a")); err != nil {
		t.Fatal(err)
	}
	bob := userP("bob")
	list := api.ListRequest{Kind: "events"}
	_, err := e.reqJSON(t, bob, api.SubjectList, list)
	wantCode(t, "list without a binding", err, 403, `user "bob" cannot list resource "events"`)
	_, err = e.reqJSON(t, bob, api.SubjectWatch, api.WatchRequest{Kind: "events"})
	wantCode(t, "watch without a binding", err, 403, `user "bob" cannot watch resource "events"`)
	e.grantEventually(t, roleBindingYAML("default", "bob-view", "ClusterRole", "view", "bob"), func() error {
		_, err := e.reqJSON(t, bob, api.SubjectList, list)
		return err
	})
	b, err := e.reqJSON(t, bob, api.SubjectList, list)
	if err != nil {
		t.Fatal(err)
	}
	var reply api.ListReply
	if err := json.Unmarshal(b, &reply); err != nil || len(reply.Items) != 1 || reply.Kind != "EventList" {
		t.Fatalf("list as bob: %s, %v", b, err)
	}
	_, err = e.reqJSON(t, bob, api.SubjectList, api.ListRequest{Kind: "events", AllNamespaces: true})
	wantCode(t, "list in every namespace with a namespaced binding", err, 403)
}
