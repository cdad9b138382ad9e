package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/internal/testutil"
)

func TestAllocations(t *testing.T) {
	srv := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := OpenAllocations(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	must := func(holder string, created bool, err error) (string, bool) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return holder, created
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if none, err := a.List(lctx, "ip."); err != nil || len(none) != 0 {
		t.Fatalf("list of an empty bucket: %v %v", none, err)
	}
	if h, c := must(a.Claim(ctx, "ip.10.43.0.5", "ns/a")); h != "" || !c {
		t.Fatalf("first claim: holder %q created %v", h, c)
	}
	if h, c := must(a.Claim(ctx, "ip.10.43.0.5", "ns/a")); h != "" || c {
		t.Fatalf("the owner again: holder %q created %v", h, c)
	}
	if h, c := must(a.Claim(ctx, "ip.10.43.0.5", "ns/b")); h != "ns/a" || c {
		t.Fatalf("another owner: holder %q created %v", h, c)
	}
	// Only the owner releases.
	if err := a.Release(ctx, "ip.10.43.0.5", "ns/b"); err != nil {
		t.Fatal(err)
	}
	claims, err := a.List(ctx, "ip.")
	if err != nil || len(claims) != 1 || claims[0].Owner != "ns/a" {
		t.Fatalf("list: %+v %v", claims, err)
	}
	// A release at a stale revision keeps the claim made since.
	if err := a.Release(ctx, "ip.10.43.0.5", "ns/a"); err != nil {
		t.Fatal(err)
	}
	must(a.Claim(ctx, "ip.10.43.0.5", "ns/c"))
	if err := a.ReleaseAt(ctx, "ip.10.43.0.5", claims[0].Revision); err != nil {
		t.Fatal(err)
	}
	if h, _ := must(a.Claim(ctx, "ip.10.43.0.5", "ns/d")); h != "ns/c" {
		t.Fatalf("a stale ReleaseAt removed a newer claim: holder %q", h)
	}
	// Concurrent claims of one key: one creates it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 16 {
		wg.Go(func() {
			_, c, err := a.Claim(ctx, "nodeport.30080", "ns/s"+string(rune('a'+i)))
			if err != nil {
				t.Error(err)
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d claims created one key", created)
	}
	if ps, err := a.List(ctx, "nodeport."); err != nil || len(ps) != 1 {
		t.Fatalf("list nodeports: %+v %v", ps, err)
	}
}
