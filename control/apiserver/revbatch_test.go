package apiserver

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Reads arriving together share fetches of the last revision, and no read
// gets a revision fetched before it arrived.
func TestRevBatchShares(t *testing.T) {
	var fetches atomic.Int64
	var store atomic.Uint64 // the "last revision", bumped by every write
	release := make(chan struct{})
	b := &revBatch{ctx: context.Background(), fetch: func(ctx context.Context) (uint64, error) {
		n := fetches.Add(1)
		if n == 1 {
			<-release // hold the first fetch until every reader waits
		}
		return store.Load(), nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A first reader starts a fetch, which is held.
	first := make(chan uint64, 1)
	go func() {
		rev, err := b.get(ctx)
		if err != nil {
			t.Error(err)
		}
		first <- rev
	}()
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// A write is acknowledged, then 50 reads arrive: they must not share
	// the held fetch, which began before the write.
	store.Store(7)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			rev, err := b.get(ctx)
			if err != nil || rev != 7 {
				t.Errorf("read after the write got revision %d, %v; want 7", rev, err)
			}
		})
	}
	// Let every reader queue behind the held fetch, then release it.
	for {
		b.mu.Lock()
		queued := b.next != nil && b.next.waiters == 50
		b.mu.Unlock()
		if queued {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	<-first
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches for 51 reads; want 2 (the held one, and one shared by the 50 that came after it began)", n)
	}
	// A read whose context ends stops waiting.
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := b.get(done); err == nil {
		t.Fatal("a cancelled read got a revision")
	}
}
