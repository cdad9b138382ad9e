package apiserver

import (
	"context"
	"sync"
)

// revBatch shares the store's last revision among consistent reads: at
// most one request for it is in flight, and every read that arrives while
// it is joins the next one (not the one in flight, which began before the
// read did and so may miss a write acknowledged just before the read). A
// read waits for at most two round trips, and the stream's leader answers
// one request per round trip however many reads arrive.
type revBatch struct {
	fetch func(context.Context) (uint64, error)
	ctx   context.Context // the server's: a fetch outlives the read that began it

	mu      sync.Mutex
	next    *revCall // the fetch the reads arriving now wait for
	running bool
}

type revCall struct {
	done    chan struct{}
	rev     uint64
	err     error
	waiters int // reads that joined it (under revBatch.mu)
}

// get returns a revision read from the store after get was called.
func (b *revBatch) get(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b.mu.Lock()
	if b.next == nil {
		b.next = &revCall{done: make(chan struct{})}
	}
	c := b.next
	c.waiters++
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.rev, c.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run serves the waiting calls one fetch at a time until none waits.
func (b *revBatch) run() {
	for {
		b.mu.Lock()
		c := b.next
		b.next = nil
		if c == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(b.ctx, consistentReadTimeout)
		c.rev, c.err = b.fetch(ctx)
		cancel()
		close(c.done)
	}
}
