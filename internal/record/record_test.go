package record

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// sink keeps every event delivered, in order; block, when set, holds the
// first delivery until it is closed.
type sink struct {
	mu    sync.Mutex
	got   []api.Event
	block chan struct{}
}

func (s *sink) Record(_ context.Context, ev *api.Event) error {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, *ev)
	return nil
}

func pod(name, uid string) api.ObjectReference {
	return api.ObjectReference{Kind: "Pod", Namespace: "default", Name: name, UID: uid}
}

func TestFolding(t *testing.T) {
	src := api.EventSource{Component: api.ComponentKubelet, Host: "n1"}
	type rec struct {
		ref         api.ObjectReference
		typ, reason string
		msg         string
	}
	tests := []struct {
		name   string
		events []rec
		want   []int32 // counts delivered, in order
		names  int     // distinct event names
	}{
		{"a repeat folds", []rec{{pod("web", "u1"), "Normal", "Pulled", "ok"}, {pod("web", "u1"), "Normal", "Pulled", "ok"}}, []int32{1, 2}, 1},
		{"another message is another event", []rec{{pod("web", "u1"), "Normal", "Pulled", "a"}, {pod("web", "u1"), "Normal", "Pulled", "b"}}, []int32{1, 1}, 2},
		{"another pod of the name is another event", []rec{{pod("web", "u1"), "Normal", "Pulled", "a"}, {pod("web", "u2"), "Normal", "Pulled", "a"}}, []int32{1, 1}, 2},
		{"another type is another event", []rec{{pod("web", "u1"), "Normal", "X", "a"}, {pod("web", "u1"), "Warning", "X", "a"}}, []int32{1, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			r := New(s, src, Options{}, nil)
			for _, e := range tt.events {
				r.Eventf(e.ref, e.typ, e.reason, "%s", e.msg)
				r.Flush() // one delivery each
			}
			names := map[string]bool{}
			var counts []int32
			for _, ev := range s.got {
				counts = append(counts, ev.Count)
				names[ev.Name] = true
				if ev.Source != src || ev.ReportingComponent != src.Component || ev.Namespace != "default" || !strings.HasPrefix(ev.Name, "web.") {
					t.Fatalf("event %+v", ev)
				}
			}
			if len(counts) != len(tt.want) || len(names) != tt.names {
				t.Fatalf("counts %v (%d names), want %v (%d names)", counts, len(names), tt.want, tt.names)
			}
			for i := range counts {
				if counts[i] != tt.want[i] {
					t.Fatalf("counts %v, want %v", counts, tt.want)
				}
			}
		})
	}
}

// Repeats that pile up while the sink is busy are delivered once, with
// the latest count; beyond the queue, new events are dropped, never
// blocking the caller.
func TestQueueSupersedesAndDrops(t *testing.T) {
	s := &sink{block: make(chan struct{})}
	now := time.Unix(1000, 0)
	r := New(s, api.EventSource{Component: "c"}, Options{Queue: 2, Now: func() time.Time { return now }}, nil)
	r.Eventf(pod("a", ""), "Normal", "First", "held by the sink")
	// Wait until the drain holds the first one.
	for {
		r.mu.Lock()
		n := len(r.queue)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		now = now.Add(time.Second)
		r.Eventf(pod("b", ""), "Warning", "BackOff", "again")
	}
	r.Eventf(pod("c", ""), "Normal", "Second", "x")
	r.Eventf(pod("d", ""), "Normal", "Dropped", "x")
	close(s.block)
	r.Flush()
	var got []string
	for _, ev := range s.got {
		got = append(got, ev.Reason)
	}
	if strings.Join(got, ",") != "First,BackOff,Second" {
		t.Fatalf("delivered %v, want First,BackOff,Second", got)
	}
	if b := s.got[1]; b.Count != 5 || !b.FirstTimestamp.Equal(time.Unix(1001, 0).UTC()) || !b.LastTimestamp.Equal(time.Unix(1005, 0).UTC()) {
		t.Fatalf("folded BackOff %+v, want count 5 from 1001 to 1005", b)
	}
}

func TestMessageTruncated(t *testing.T) {
	s := &sink{}
	r := New(s, api.EventSource{Component: "c"}, Options{}, nil)
	r.Eventf(pod("a", ""), "Normal", "Long", "%s", strings.Repeat("é", 1000))
	r.Flush()
	m := s.got[0].Message
	if len(m) > api.MaxEventMessage || !strings.HasSuffix(m, "...") || strings.ContainsRune(m, '\uFFFD') {
		t.Fatalf("message of %d bytes: %q...", len(m), m[:20])
	}
	if err := api.ValidateEvent(&s.got[0]); err != nil {
		t.Fatalf("a recorded event is invalid: %v", err)
	}
}

// The fold cache forgets the least recently recorded event first.
func TestCacheBounded(t *testing.T) {
	s := &sink{}
	r := New(s, api.EventSource{Component: "c"}, Options{Cache: 2}, nil)
	for _, n := range []string{"a", "b", "a", "c", "b"} {
		r.Eventf(pod(n, ""), "Normal", "R", "m")
		r.Flush()
	}
	var counts []int32
	for _, ev := range s.got {
		counts = append(counts, ev.Count)
	}
	// b is forgotten when c comes (a was used more recently).
	if want := []int32{1, 1, 2, 1, 1}; len(counts) != 5 || counts[2] != want[2] || counts[4] != want[4] {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	if r.lru.Len() != 2 {
		t.Fatalf("cache holds %d, want 2", r.lru.Len())
	}
}

// BenchmarkEventf: the cost to the caller of recording a repeat (the sink
// runs apart).
func BenchmarkEventf(b *testing.B) {
	r := New(SinkFunc(func(context.Context, *api.Event) error { return nil }), api.EventSource{Component: "c"}, Options{}, nil)
	ref := pod("web", "u1")
	for b.Loop() {
		r.Eventf(ref, api.EventTypeWarning, api.ReasonFailedScheduling, "0/3 nodes are available: %d Insufficient cpu.", 3)
	}
	r.Flush()
}
