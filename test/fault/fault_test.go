package fault

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestKillObjectsLeader: kill -9 the server leading the objects bucket
// while 8 clients apply, five times. The API answers again within 5 s of
// the kill (the first write acknowledged after it), and every write that
// got a success reply is present afterwards.
func TestKillObjectsLeader(t *testing.T) {
	enabled(t)
	c := startCluster(t, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, nil)
	creds, ca := c.servers[0].creds(t)
	var conns []*nats.Conn
	for i := 0; i < 8; i++ {
		conns = append(conns, connect(t, creds, ca, c.urls()...))
	}
	watch := connect(t, creds, ca, c.urls()...)
	total := 0
	var gaps []time.Duration
	for round := 0; round < 5; round++ {
		leader := c.byName(streamLeader(t, watch, "KV_kyb-objects"))
		l := startLoad(t, conns, 8, fmt.Sprintf("r%d", round), 0, 2*time.Second)
		time.Sleep(500 * time.Millisecond)
		killed := time.Now()
		leader.kill()
		var back time.Time
		testutil.Eventually(t, 10*time.Second, func() error {
			at, ok := l.firstAckAfter(killed)
			if !ok {
				return fmt.Errorf("no write acknowledged since %s was killed", leader.name)
			}
			back = at
			return nil
		})
		time.Sleep(500 * time.Millisecond)
		l.halt()
		gap := back.Sub(killed)
		gaps = append(gaps, gap)
		// NATS elects a new stream leader after a randomized election
		// timeout, which kybernetes sets to 2-3.5 s (controlplane/raft.go;
		// nats-server's own 4-9 s would miss this): docs/ha.md.
		if gap > 5*time.Second {
			t.Errorf("round %d: the API answered %v after %s (the objects leader) was killed, want <= 5s", round, gap, leader.name)
		}
		// The killed server comes back on its data and catches up.
		leader.extra = nil
		leader.start()
		if missing := l.missing(t, watch); len(missing) > 0 {
			t.Fatalf("round %d: %d of %d acknowledged writes are missing after %s was killed: %v", round, len(missing), len(l.acked), leader.name, missing[:min(len(missing), 10)])
		}
		total += len(l.acked)
		t.Logf("round %d: killed %s; first write acknowledged %v later; %d writes acknowledged, %d attempts failed, all present",
			round, leader.name, gap.Round(time.Millisecond), len(l.acked), l.errs.Load())
		cc := client.New(watch)
		testutil.Eventually(t, 60*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := cc.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			return allCurrent(st, 3)
		})
	}
	slices.Sort(gaps)
	t.Logf("kill -9 of the objects leader, 5 rounds: %d acknowledged writes, none lost; API back after p50 %v, max %v",
		total, gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
}

// TestKillSingleServer: kill -9 a server with no cluster while 8 clients
// apply with --sync always: no acknowledged write is lost.
func TestKillSingleServer(t *testing.T) {
	enabled(t)
	s := &server{t: t, name: "single", dir: t.TempDir(), host: "127.0.0.1", port: freePort(t), extra: []string{"--sync", "always"}}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("log:\n%s", s.logTail())
		}
	})
	s.start()
	creds, ca := s.creds(t)
	var conns []*nats.Conn
	for i := 0; i < 8; i++ {
		conns = append(conns, connect(t, creds, ca, s.url()))
	}
	waitAPI(t, conns[0], 30*time.Second)
	l := startLoad(t, conns, 8, "single", 0, 2*time.Second)
	time.Sleep(time.Second)
	s.kill()
	l.halt()
	s.start()
	nc := connect(t, creds, ca, s.url())
	waitAPI(t, nc, 30*time.Second)
	if missing := l.missing(t, nc); len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost by kill -9: %v", len(missing), len(l.acked), missing[:min(len(missing), 10)])
	}
	t.Logf("kill -9 of a single server (sync always): %d acknowledged writes, none lost", len(l.acked))
}

// TestRollingRestart: each of the three servers is stopped and started
// again in turn while 8 clients apply; with the documented retry policy
// (a timeout, no responder or 503 is retried for up to 10 s) no request
// fails, and every acknowledged write is present.
func TestRollingRestart(t *testing.T) {
	enabled(t)
	c := startCluster(t, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, nil)
	creds, ca := c.servers[0].creds(t)
	var conns []*nats.Conn
	for i := 0; i < 8; i++ {
		conns = append(conns, connect(t, creds, ca, c.urls()...))
	}
	watch := connect(t, creds, ca, c.urls()...)
	l := startLoad(t, conns, 8, "rolling", 10*time.Second, 2*time.Second)
	cc := client.New(watch)
	for _, s := range c.servers {
		time.Sleep(500 * time.Millisecond)
		s.stop()
		s.extra = nil
		s.start()
		testutil.Eventually(t, 60*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := cc.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			return allCurrent(st, 3)
		})
	}
	time.Sleep(500 * time.Millisecond)
	l.halt()
	if len(l.failed) > 0 {
		t.Errorf("%d requests failed after retries during the rolling restart: %v", len(l.failed), l.failed[:min(len(l.failed), 5)])
	}
	if missing := l.missing(t, watch); len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes missing after the rolling restart: %v", len(missing), len(l.acked), missing[:min(len(missing), 10)])
	}
	t.Logf("rolling restart of 3 servers under load: %d writes acknowledged, %d attempts retried, 0 failed", len(l.acked), l.errs.Load())
}

// TestReplaceServer: a dead server is removed from the cluster (peer
// removal) and a new one joins in its place; every stream is back on three
// current replicas.
func TestReplaceServer(t *testing.T) {
	enabled(t)
	c := startCluster(t, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, nil)
	creds, ca := c.servers[0].creds(t)
	nc := connect(t, creds, ca, c.servers[0].url(), c.servers[1].url())
	cc := client.New(nc)
	dead := c.servers[2]
	dead.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testutil.Eventually(t, 30*time.Second, func() error { return cc.RemoveServer(ctx, dead.name) })
	// A new server, on a fresh data dir, joins with the server token.
	repl := &server{t: t, name: "s3", dir: t.TempDir(), host: "127.0.0.1", port: freePort(t), clusterPort: freePort(t),
		extra: []string{"--join", c.servers[0].url(), "--token", c.servers[1].extra[3]}}
	c.servers[2] = repl
	repl.start()
	testutil.Eventually(t, 90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cc.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Servers {
			if s.Name == dead.name && s.Up {
				return fmt.Errorf("%s still up", dead.name)
			}
		}
		for _, s := range st.Streams {
			for _, p := range s.Peers {
				if p.Name == dead.name {
					return fmt.Errorf("stream %s still has a replica on %s", s.Name, dead.name)
				}
			}
		}
		return allCurrent(st, 3)
	})
	t.Logf("%s removed and replaced by %s: every stream on three current replicas", dead.name, repl.name)
}
