package store

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// retry runs a write until it succeeds across a reconnect; ok reports
// whether an error means the write already happened.
func retry(t *testing.T, what string, f func() error, ok func(error) bool) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		err := f()
		if err == nil || ok(err) {
			return nil
		}
		return fmt.Errorf("%s: %w", what, err)
	})
}

// drain reads events until want have arrived, failing on any repeat,
// reordering or unexpected event.
func drainExactly(t *testing.T, ch <-chan Event, want []string) {
	t.Helper()
	var last uint64
	for i, w := range want {
		ev := recv(t, ch)
		if got := evString(ev); got != w {
			t.Fatalf("event %d = %q; want %q", i, got, w)
		}
		if ev.Type == Synced {
			continue
		}
		if ev.Revision <= last {
			t.Fatalf("event %d revision %d after %d: repeated or out of order", i, ev.Revision, last)
		}
		last = ev.Revision
	}
	select {
	case ev := <-ch:
		t.Fatalf("unexpected extra event %q", evString(ev))
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatchResumeAfterReconnect(t *testing.T) {
	dir := t.TempDir()
	srv := testutil.StartNATSAt(t, dir, -1)
	port := srv.Addr().(*net.TCPAddr).Port
	nc := testutil.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	s := openStore(t, nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for i := range 3 {
		if err := s.Create(ctx, newPod("default", fmt.Sprintf("p%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := s.Watch(ctx, podKind, 0)
	if err != nil {
		t.Fatal(err)
	}
	drainExactly(t, ch, []string{"ADDED default/p0", "ADDED default/p1", "ADDED default/p2", "SYNCED"})

	create := func(t *testing.T, name string) {
		retry(t, "create "+name, func() error { return s.Create(ctx, newPod("default", name, nil)) }, api.IsAlreadyExists)
	}

	outer := t
	t.Run("server restart on the same store", func(t *testing.T) {
		srv.Shutdown()
		srv.WaitForShutdown()
		testutil.StartNATSAt(outer, dir, port) // lives on for the next subtest
		create(t, "p3")
		retry(t, "delete p1", func() error {
			_, err := s.Delete(ctx, podKind, "default", "p1", "")
			return err
		}, api.IsNotFound)
		retry(t, "update p0", func() error {
			o, err := s.Get(ctx, podKind, "default", "p0")
			if err != nil {
				return err
			}
			o.GetObjectMeta().Labels = map[string]string{"after": "restart"}
			return s.Update(ctx, o)
		}, func(error) bool { return false })
		drainExactly(t, ch, []string{"ADDED default/p3", "DELETED default/p1", "MODIFIED default/p0"})
	})

	t.Run("client reconnect", func(t *testing.T) {
		if err := nc.ForceReconnect(); err != nil {
			t.Fatal(err)
		}
		create(t, "p4")
		create(t, "p5")
		drainExactly(t, ch, []string{"ADDED default/p4", "ADDED default/p5"})
	})
}

func TestHeartbeatWatchAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := testutil.StartNATSAt(t, dir, -1)
	port := srv.Addr().(*net.TCPAddr).Port
	nc := testutil.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hb, err := OpenHeartbeats(ctx, js, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	events, err := hb.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAlive := func(t *testing.T, node string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("heartbeat watch closed")
				}
				if ev.Node == node && ev.Alive {
					return
				}
			case <-deadline:
				t.Fatalf("no beat of %s seen within 30s", node)
			}
		}
	}
	if err := hb.Beat(ctx, "before", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitAlive(t, "before")
	srv.Shutdown()
	srv.WaitForShutdown()
	testutil.StartNATSAt(t, dir, port)
	retry(t, "beat after restart", func() error { return hb.Beat(ctx, "after", time.Now()) }, func(error) bool { return false })
	waitAlive(t, "after")
}
