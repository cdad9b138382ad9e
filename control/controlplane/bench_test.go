package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

func benchCP(b *testing.B, tls string) *controlplane.ControlPlane {
	b.Helper()
	cp, err := controlplane.Start(context.Background(), controlplane.Config{
		DataDir: b.TempDir(), Listen: "127.0.0.1:0", TLS: tls, Sync: "always",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cp.Shutdown() })
	return cp
}

func podJSON(name string) []byte {
	return []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name +
		`","labels":{"app":"bench"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}`)
}

// BenchmarkSecureApply applies one new pod per iteration, sequentially, as
// the admin over TLS and over plain TCP (authentication by the NATS server,
// the identity header across the users' import, RBAC, admission) and, for
// comparison in the same run, over the control plane's own in-process
// connection (no identity, no RBAC, no TCP). Sync "always". Reports p50/p99.
func BenchmarkSecureApply(b *testing.B) {
	for _, who := range []string{"control-plane", "admin-plain", "admin-tls"} {
		b.Run(who, func(b *testing.B) {
			tls := "on"
			if who == "admin-plain" {
				tls = "off"
			}
			cp := benchCP(b, tls)
			nc := cp.Conn()
			if who != "control-plane" {
				credsOpt, _ := client.CredsOption(mustAdmin(b, cp))
				tlsOpt, _ := client.TLSOption(cp.Authority().CAPEM())
				var err error
				if nc, err = nats.Connect(cp.ClientURL(), credsOpt, tlsOpt); err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
			}
			c := client.New(nc)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if _, err := c.Apply(ctx, podJSON(fmt.Sprintf("p%d", i))); err != nil {
					b.Fatalf("apply %d: %v", i, err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkSecureApplyParallel applies new pods from 16 admin clients over
// TLS, each on its own connection, against 16 in-process control plane
// clients, and reports creates per second.
func BenchmarkSecureApplyParallel(b *testing.B) {
	for _, who := range []string{"control-plane", "admin-tls"} {
		b.Run(who, func(b *testing.B) {
			cp := benchCP(b, "on")
			const clients = 16
			var cs []*client.Client
			for range clients {
				if who == "control-plane" {
					cs = append(cs, client.New(cp.Conn()))
					continue
				}
				credsOpt, _ := client.CredsOption(mustAdmin(b, cp))
				tlsOpt, _ := client.TLSOption(cp.Authority().CAPEM())
				nc, err := nats.Connect(cp.ClientURL(), credsOpt, tlsOpt)
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				cs = append(cs, client.New(nc))
			}
			var next atomic.Int64
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range clients {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if _, err := cs[w].Apply(ctx, podJSON(fmt.Sprintf("p%d", i))); err != nil {
							b.Errorf("apply %d: %v", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
		})
	}
}

func mustAdmin(b *testing.B, cp *controlplane.ControlPlane) []byte {
	creds, err := cp.Authority().AdminCreds()
	if err != nil {
		b.Fatal(err)
	}
	return creds
}

// BenchmarkJoin measures an agent's join: from a fresh token to a Ready
// node, through the TLS join (token check by the auth callout, the pinned
// CA, kyb.join), the node's own connection and its registration, with a
// fake runtime. Reports the mean per join in ms.
func BenchmarkJoin(b *testing.B) {
	cp := benchCP(b, "on")
	admin := client.New(cp.Conn())
	ctx := context.Background()
	rt, err := fake.New(fake.Config{Name: api.RuntimeWasm}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("n%d", i)
		start := time.Now()
		tok, _, err := cp.Tokens().Create(ctx, time.Hour, "bench")
		if err != nil {
			b.Fatal(err)
		}
		creds, err := client.Join(ctx, cp.ClientURL(), tok, name)
		if err != nil {
			b.Fatal(err)
		}
		credsOpt, _ := client.CredsOption(creds.Creds)
		tlsOpt, _ := client.TLSOption(creds.CA)
		nc, err := nats.Connect(cp.ClientURL(), credsOpt, tlsOpt, nats.CustomInboxPrefix(auth.InboxPrefix(name)))
		if err != nil {
			b.Fatal(err)
		}
		a, err := node.New(node.Config{Name: name, DataDir: filepath.Join(b.TempDir(), name)}, nc,
			map[string]runtimes.Runtime{api.RuntimeWasm: rt}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = a.Run(actx) }()
		for {
			o, err := admin.Get(ctx, "Node", "", name)
			if err == nil && o.(*api.Node).IsReady() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		nc.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/join")
}
