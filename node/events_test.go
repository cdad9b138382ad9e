package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// eventsOf returns the events the control plane got about pod uid, the
// latest copy of each (by name), in first-arrival order.
func (cp *fakeCP) eventsOf(uid string) []api.Event {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	idx := map[string]int{}
	var out []api.Event
	for _, ev := range cp.events {
		if ev.InvolvedObject.UID != uid {
			continue
		}
		if i, ok := idx[ev.Name]; ok {
			out[i] = ev
			continue
		}
		idx[ev.Name] = len(out)
		out = append(out, ev)
	}
	return out
}

// The agent records its pods' events through kyb.node.<name>.events: valid
// Events about the pod (its UID) and the container (fieldPath), from the
// kubelet of this node; a container that keeps exiting has one event per
// exit code, its count growing.
func TestAgentRecordsEvents(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := h.cp.assign(mkpod("ev", api.RestartPolicyAlways, "fake://exit/1"))
	var started api.Event
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, ev := range h.cp.eventsOf(p.UID) {
			if ev.Reason == api.ReasonStarted {
				started = ev
				return nil
			}
		}
		return fmt.Errorf("no Started event among %+v", h.cp.eventsOf(p.UID))
	})
	want := api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "ev", UID: p.UID, APIVersion: "v1", FieldPath: "spec.containers{c0}"}
	if started.InvolvedObject != want || started.Source != (api.EventSource{Component: api.ComponentKubelet, Host: h.cfg.Name}) ||
		started.Type != api.EventTypeNormal || started.Namespace != "default" {
		t.Fatalf("Started event %+v", started)
	}
	// The container exits with 1 again and again: its exits fold.
	testutil.Eventually(t, 20*time.Second, func() error {
		for _, ev := range h.cp.eventsOf(p.UID) {
			if ev.Reason == "Exited" && ev.Count >= 2 {
				return nil
			}
		}
		return fmt.Errorf("no repeated Exited event among %+v", h.cp.eventsOf(p.UID))
	})
}
