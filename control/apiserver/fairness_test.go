package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestHeartbeatsSurviveApplyFlood: while several clients flood the API with
// large multi-document applies that hold every user request slot (here
// one, to make the flood total), an agent-like client beating every 250 ms
// against a 2 s heartbeat TTL never expires: node requests are served on
// their own semaphore, apart from user requests.
func TestHeartbeatsSurviveApplyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the apiserver for a few seconds")
	}
	s := testutil.StartNATS(t)
	e := newEnvOn(t, s, apiserver.Config{MaxInFlight: 1})
	e.registerNode(t, "n1", nil)
	beats, err := e.hb.Watch(e.ctx)
	if err != nil {
		t.Fatal(err)
	}

	agent := client.New(testutil.Connect(t, s, nats.Name("agent-n1")), client.WithTimeout(5*time.Second))
	beat := func() error {
		_, err := agent.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbHeartbeat), must(json.Marshal(api.Heartbeat{Time: time.Now()})))
		return err
	}
	if err := beat(); err != nil {
		t.Fatal(err)
	}
	// Wait for the first beat to be seen alive, so an expiry below is real.
	waitBeat := time.After(5 * time.Second)
	for alive := false; !alive; {
		select {
		case ev := <-beats:
			alive = ev.Node == "n1" && ev.Alive
		case <-waitBeat:
			t.Fatal("first beat not seen")
		}
	}

	const clients, podsPerApply, flood = 3, 2500, 3 * time.Second
	ctx, cancel := context.WithTimeout(e.ctx, flood)
	defer cancel()
	var wg sync.WaitGroup
	for i := range clients {
		c := client.New(testutil.Connect(t, s, nats.Name(fmt.Sprintf("flood-%d", i))), client.WithTimeout(30*time.Second))
		wg.Go(func() {
			for round := 0; ctx.Err() == nil; round++ {
				var b strings.Builder
				for p := range podsPerApply {
					if p > 0 {
						b.WriteString("---\n")
					}
					fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: f%d-%d\n  labels: {r: r%d}\nspec:\n  containers:\n  - {name: a, image: i}\n", i, p, round)
				}
				// Errors (a 503 under load) are fine; the flood is the point.
				_, _ = c.Apply(e.ctx, []byte(b.String()))
			}
		})
	}
	// Beat and watch until every flood request has been answered: the
	// server is busy with them until then, after the flood stops too.
	flooded := make(chan struct{})
	go func() { wg.Wait(); close(flooded) }()
	var mu sync.Mutex
	var maxRTT time.Duration
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	expired := ""
loop:
	for {
		select {
		case <-flooded:
			break loop
		case ev := <-beats:
			if ev.Node == "n1" && !ev.Alive {
				expired = fmt.Sprintf("node n1's heartbeat expired at %s during the flood", ev.Time.Format(time.StampMilli))
				break loop
			}
		case <-tick.C:
			go func() {
				start := time.Now()
				if err := beat(); err != nil {
					t.Logf("heartbeat: %v", err)
				}
				mu.Lock()
				maxRTT = max(maxRTT, time.Since(start))
				mu.Unlock()
			}()
		}
	}
	_, alive, err := e.hb.Last(e.ctx, "n1")
	cancel()
	<-flooded
	mu.Lock()
	t.Logf("slowest heartbeat during the flood: %v", maxRTT)
	mu.Unlock()
	if expired != "" {
		t.Fatal(expired)
	}
	if err != nil || !alive {
		t.Fatalf("at the end of the flood: alive=%v %v", alive, err)
	}
}
