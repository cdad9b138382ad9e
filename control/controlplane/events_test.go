package controlplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// Through the real control plane and real node credentials: the scheduler
// records FailedScheduling for a pod no node can take; a node records
// events about its own pods only, and can no longer publish pod events
// anywhere but through the apiserver.
func TestEventsWithRealIdentities(t *testing.T) {
	cp := startCP(t, "on")
	ctx := context.Background()
	adminNC, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(adminNC, client.WithTimeout(10*time.Second))
	pod := func(name, node string) []byte {
		m := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n"
		if node != "" {
			m += "  nodeName: " + node + "\n"
		}
		return []byte(m + "  containers:\n  - name: app\n    image: busybox\n")
	}
	for _, p := range [][]byte{pod("pending", ""), pod("web", "n1")} {
		if _, err := admin.Apply(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		evs, err := admin.Events(ctx, "default", false, "involvedObject.name=pending,reason=FailedScheduling")
		if err != nil {
			return err
		}
		if len(evs) != 1 || evs[0].Source.Component != "default-scheduler" || evs[0].Type != api.EventTypeWarning {
			return fmt.Errorf("FailedScheduling events %+v", evs)
		}
		return nil
	})

	nodeConn := func(name string) (*nats.Conn, <-chan error) {
		errOpt, errs := permErrs(t)
		nc, err := connectAs(t, cp, join(t, cp, name), errOpt, nats.CustomInboxPrefix(auth.InboxPrefix(name)))
		if err != nil {
			t.Fatalf("node %s connect: %v", name, err)
		}
		return nc, errs
	}
	n1, _ := nodeConn("n1")
	n2, n2errs := nodeConn("n2")
	body, _ := json.Marshal(api.Event{InvolvedObject: api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
		Type: api.EventTypeNormal, Reason: "Started", Message: "Started container app", Source: api.EventSource{Component: "kubelet"}})
	if _, err := client.New(n1).Request(ctx, api.NodeSubject("n1", api.NodeVerbEvents), body); err != nil {
		t.Fatalf("n1 records an event of its pod: %v", err)
	}
	_, err = client.New(n2).Request(ctx, api.NodeSubject("n2", api.NodeVerbEvents), body)
	if st, ok := err.(*api.Status); !ok || st.Code != 403 {
		t.Fatalf("n2 records an event of n1's pod: %v, want 403", err)
	}
	for _, subj := range []string{api.NodeSubject("n1", api.NodeVerbEvents), "kyb.podevents.n2.default.web", "kyb.eventlog.default.x.y"} {
		if err := n2.Publish(subj, body); err != nil {
			t.Fatal(err)
		}
		wantPermViolation(t, n2errs, subj)
	}
	evs, err := admin.Events(ctx, "default", false, "involvedObject.name=web")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Reason != "Started" || evs[0].Source.Host != "n1" || evs[0].Count != 1 {
		t.Fatalf("events of web: %+v, want n1's Started only", evs)
	}
}
