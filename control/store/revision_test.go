package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A WatchProgress reaches the stream's last revision even when the last
// writes are no object's (a lease), and after a delete; a plain Watch sends
// no Progress event.
func TestWatchProgressReachesLastRevision(t *testing.T) {
	st := openLeases(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.Create(ctx, newPod("default", "p", nil)); err != nil {
		t.Fatal(err)
	}
	progress, err := st.WatchProgress(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := st.Watch(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// reach reads w until an event at rev or later; it returns how many
	// Progress events it saw.
	reach := func(w <-chan Event, rev uint64) int {
		t.Helper()
		n := 0
		for {
			select {
			case ev, ok := <-w:
				if !ok {
					t.Fatalf("watch closed before revision %d", rev)
				}
				if ev.Type == Progress {
					n++
					if ev.Object != nil {
						t.Fatalf("progress event with an object: %+v", ev)
					}
				}
				if ev.Revision >= rev && ev.Type != Synced {
					return n
				}
			case <-ctx.Done():
				t.Fatalf("no event at revision %d or later", rev)
			}
		}
	}
	last, err := st.LastRevision(ctx)
	if err != nil || last == 0 {
		t.Fatalf("LastRevision = %d, %v", last, err)
	}
	reach(progress, last)
	l, err := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.Acquire(ctx); !ok || err != nil {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	last, err = st.LastRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := reach(progress, last); n == 0 {
		t.Fatal("a lease write reached the progress watch without a Progress event")
	}
	// The plain watch sends no Progress: write an object after the lease
	// and it is the next event.
	if err := st.Create(ctx, newPod("default", "q", nil)); err != nil {
		t.Fatal(err)
	}
	last2, err := st.LastRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := reach(plain, last2); n != 0 {
		t.Fatalf("plain watch sent %d Progress events", n)
	}
	if n := reach(progress, last2); n != 0 {
		t.Fatalf("an object write came as %d Progress events", n)
	}
}

// LastRevision trusts a stream info answer only from a leader in recent
// contact with a quorum: a leaderless replica's own state, or a leader cut
// off from its followers, is no proof of the last acknowledged write.
func TestLeaderInContact(t *testing.T) {
	fresh, stale := 300*time.Millisecond, LeaderContactBound+time.Second
	peer := func(current bool, active time.Duration) *jetstream.PeerInfo {
		return &jetstream.PeerInfo{Name: "p", Current: current, Active: active}
	}
	for _, tc := range []struct {
		name     string
		replicas int
		cluster  *jetstream.ClusterInfo
		trusted  bool
	}{
		{"single server", 1, nil, true},
		{"R1 in a cluster", 1, &jetstream.ClusterInfo{Leader: "a"}, true},
		{"R3, both followers in contact", 3, &jetstream.ClusterInfo{Leader: "a", Replicas: []*jetstream.PeerInfo{peer(true, fresh), peer(true, fresh)}}, true},
		{"R3, one follower in contact", 3, &jetstream.ClusterInfo{Leader: "a", Replicas: []*jetstream.PeerInfo{peer(true, fresh), peer(false, stale)}}, true},
		{"R3, leaderless replica", 3, &jetstream.ClusterInfo{Replicas: []*jetstream.PeerInfo{peer(true, fresh), peer(true, fresh)}}, false},
		{"R3, leader cut off", 3, &jetstream.ClusterInfo{Leader: "a", Replicas: []*jetstream.PeerInfo{peer(true, stale), peer(true, stale)}}, false},
		{"R3, followers catching up", 3, &jetstream.ClusterInfo{Leader: "a", Replicas: []*jetstream.PeerInfo{peer(false, fresh), peer(false, fresh)}}, true},
		{"R3, no replicas listed", 3, &jetstream.ClusterInfo{Leader: "a"}, false},
		{"R5, one of four followers", 5, &jetstream.ClusterInfo{Leader: "a", Replicas: []*jetstream.PeerInfo{peer(true, fresh), peer(true, stale), peer(false, stale), nil}}, false},
		{"R5, two of four followers", 5, &jetstream.ClusterInfo{Leader: "a", Replicas: []*jetstream.PeerInfo{peer(true, fresh), peer(true, stale), peer(false, fresh), nil}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := &jetstream.StreamInfo{Config: jetstream.StreamConfig{Replicas: tc.replicas}, Cluster: tc.cluster}
			why := leaderInContact(info)
			if (why == "") != tc.trusted {
				t.Fatalf("leaderInContact = %q; trusted want %v", why, tc.trusted)
			}
		})
	}
}
