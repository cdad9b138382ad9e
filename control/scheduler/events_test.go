package scheduler

import (
	"context"
	"sync"
	"testing"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/record"
)

// eventLog keeps the latest copy of each event a recorder delivers, as
// the events store does.
type eventLog struct {
	mu     sync.Mutex
	byName map[string]api.Event
	order  []string
}

func (l *eventLog) Record(_ context.Context, ev *api.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.byName[ev.Name]; !ok {
		l.order = append(l.order, ev.Name)
	}
	l.byName[ev.Name] = *ev
	return nil
}

func (l *eventLog) all() []api.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]api.Event, 0, len(l.order))
	for _, n := range l.order {
		out = append(out, l.byName[n])
	}
	return out
}

// of filters returns the events about pod name.
func (l *eventLog) of(name string) []api.Event {
	var out []api.Event
	for _, ev := range l.all() {
		if ev.InvolvedObject.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

// A pod that stays pending has one FailedScheduling event (the message
// the scheduler computes) whose count grows with every attempt; once
// bound, a Scheduled event names the node.
func TestSchedulerEvents(t *testing.T) {
	log := &eventLog{byName: map[string]api.Event{}}
	rec := record.New(log, api.EventSource{Component: api.ComponentScheduler}, record.Options{}, nil)
	h := newHarness(t, Config{Recorder: rec})
	h.putNode(mkNode("a", "2", "4Gi"))
	h.putPod(mkPod("big", "2", "1Gi", onNode("a")))
	h.synced()
	for _, p := range []string{"p1", "p2", "p3"} {
		h.putPod(mkPod(p, "1", "1Gi"))
		h.idle(t)
	}
	// The node grows by one pod's worth twice: each time the pending pods
	// are tried again and one more fits; p3 is tried three times in vain.
	for _, cpu := range []string{"3", "4"} {
		h.putNode(mkNode("a", cpu, "4Gi"))
		h.idle(t)
	}
	rec.Flush()
	uid := h.pod("p3").UID
	evs := log.of("p3")
	if len(evs) != 1 {
		t.Fatalf("events of p3 %+v, want one FailedScheduling", evs)
	}
	ev := evs[0]
	if ev.Reason != api.ReasonFailedScheduling || ev.Type != api.EventTypeWarning || ev.Message != "0/1 nodes are available: 1 Insufficient cpu." ||
		ev.InvolvedObject != (api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p3", UID: uid, APIVersion: "v1"}) ||
		ev.Source.Component != api.ComponentScheduler || ev.Count != 3 || ev.LastTimestamp.Before(ev.FirstTimestamp) {
		t.Fatalf("event of p3 %+v, want FailedScheduling x3", ev)
	}
	for _, p := range []string{"p1", "p2"} {
		evs := log.of(p)
		if len(evs) != 2 || evs[0].Reason != api.ReasonFailedScheduling || evs[1].Reason != api.ReasonScheduled ||
			evs[1].Message != "Successfully assigned default/"+p+" to a" {
			t.Fatalf("events of %s: %+v, want FailedScheduling then Scheduled to a", p, evs)
		}
	}

	h.deletePod("big")
	h.idle(t)
	rec.Flush()
	evs = log.of("p3")
	if len(evs) != 2 || evs[1].Reason != api.ReasonScheduled || evs[1].Type != api.EventTypeNormal ||
		evs[1].Message != "Successfully assigned default/p3 to a" || evs[1].InvolvedObject.UID != uid || evs[0].Count != 3 {
		t.Fatalf("after the bind: %+v, want FailedScheduling x3 and Scheduled naming node a", evs)
	}
}
