package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func TestHeartbeats(t *testing.T) {
	srv := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if _, err := OpenHeartbeats(ctx, js, 500*time.Millisecond); err == nil {
		t.Fatalf("OpenHeartbeats accepted a ttl under 1s")
	}
	hb, err := OpenHeartbeats(ctx, js, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Beat(ctx, "", time.Now()); api.ReasonOf(err) != api.ReasonBadRequest {
		t.Fatalf("empty node: err = %v; want BadRequest", err)
	}
	if _, ok, err := hb.Last(ctx, "never"); ok || err != nil {
		t.Fatalf("Last(never) = %v, %v; want false, nil", ok, err)
	}

	events, err := hb.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// steady beats every 100ms, 20 times within its TTL; dying beats once.
	steadyCtx, stopSteady := context.WithCancel(ctx)
	defer stopSteady()
	beatErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := hb.Beat(steadyCtx, "steady.example.com", time.Now()); err != nil && steadyCtx.Err() == nil {
				beatErr <- err
				return
			}
			select {
			case <-steadyCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	beat := time.Now().UTC().Truncate(time.Millisecond)
	if err := hb.Beat(ctx, "dying", beat); err != nil {
		t.Fatal(err)
	}
	if last, ok, err := hb.Last(ctx, "dying"); err != nil || !ok || !last.Equal(beat) {
		t.Fatalf("Last(dying) = %v, %v, %v; want %v, true", last, ok, err, beat)
	}

	sawAlive := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-beatErr:
			t.Fatalf("steady beat: %v", err)
		case <-deadline:
			t.Fatalf("no expiry of node dying within 30s (alive seen: %v)", sawAlive)
		case ev := <-events:
			if ev.Alive {
				sawAlive[ev.Node] = true
				continue
			}
			if ev.Node == "steady.example.com" {
				t.Fatalf("steady node expired while beating every 100ms with a 2s TTL")
			}
			if ev.Node != "dying" || !sawAlive["dying"] || !sawAlive["steady.example.com"] {
				t.Fatalf("unexpected expiry %+v (alive seen: %v)", ev, sawAlive)
			}
			if _, ok, err := hb.Last(ctx, "dying"); ok || err != nil {
				t.Fatalf("Last(dying) after expiry = %v, %v; want false", ok, err)
			}
			if _, ok, err := hb.Last(ctx, "steady.example.com"); !ok || err != nil {
				t.Fatalf("Last(steady) = %v, %v; want true", ok, err)
			}
			// A new watcher starts with the expired node as not alive.
			ch2, err := hb.Watch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				for {
					select {
					case ev := <-ch2:
						if ev.Node == "dying" && !ev.Alive {
							return nil
						}
					default:
						return testutil.Errorf("second watch has not reported dying as expired")
					}
				}
			})
			if err := hb.Forget(ctx, "steady.example.com"); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}
