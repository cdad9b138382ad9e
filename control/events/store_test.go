package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/events"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func open(t testing.TB, cfg events.Config) *events.Store {
	t.Helper()
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	st, err := events.Open(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ev(pod, reason string, count int32) *api.Event {
	return &api.Event{
		InvolvedObject: api.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod, UID: "u-" + pod},
		Type:           api.EventTypeNormal, Reason: reason, Message: "m", Count: count,
		Source: api.EventSource{Component: "kubelet", Host: "n1"},
	}
}

// The store folds a repeat whatever count the recorder sends: a recorder
// that restarted (count 1 again) still makes the stored count grow.
func TestRecordFolds(t *testing.T) {
	ctx := context.Background()
	st := open(t, events.Config{})
	for i, tc := range []struct {
		send, want int32
	}{{1, 1}, {2, 2}, {3, 3}, {1, 4}, {9, 9}} {
		out, err := st.Record(ctx, ev("web", "BackOff", tc.send))
		if err != nil {
			t.Fatal(err)
		}
		if out.Count != tc.want {
			t.Fatalf("record %d (count %d): stored count %d, want %d", i, tc.send, out.Count, tc.want)
		}
	}
	list, rev, err := st.List(ctx, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Count != 9 || rev == 0 || list[0].ResourceVersion == "" {
		t.Fatalf("list %+v at %d, want one event with count 9", list, rev)
	}
	if _, err := st.Record(ctx, &api.Event{InvolvedObject: api.ObjectReference{Kind: "Pod", Name: "web"}}); !api.IsInvalid(err) {
		t.Fatalf("an invalid event: %v, want 422", err)
	}
}

// An object keeps at most MaxPerObject events: the least recently recorded
// goes; other objects keep theirs.
func TestLimitPerObject(t *testing.T) {
	ctx := context.Background()
	st := open(t, events.Config{MaxPerObject: 3})
	if _, err := st.Record(ctx, ev("other", "Keep", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := st.Record(ctx, ev("web", fmt.Sprintf("R%d", i), 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct lastTimestamps, for the order
	}
	list, _, err := st.List(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.InvolvedObject.Name+"/"+e.Reason)
	}
	if fmt.Sprint(got) != "[other/Keep web/R2 web/R3 web/R4]" {
		t.Fatalf("events %v, want other's and web's last three", got)
	}
}
