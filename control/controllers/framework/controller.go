package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// Result tells the Controller what to do with a key after a Reconcile
// that returned no error: nothing (the zero value), Requeue (again after
// the key's rate-limited back-off), or RequeueAfter (again after that
// long; it wins over Requeue).
type Result struct {
	Requeue      bool
	RequeueAfter time.Duration
}

// Reconciler makes the world match what is stored for one key. It is
// level-triggered: it reads the current state (from a Lister, or the store)
// every time, never the event that queued it, so calling it again with
// nothing changed changes nothing. The Controller never runs it twice at
// once for one key.
type Reconciler interface {
	Reconcile(ctx context.Context, key Key) (Result, error)
}

// ReconcileFunc is a func that is a Reconciler.
type ReconcileFunc func(ctx context.Context, key Key) (Result, error)

// Reconcile calls f.
func (f ReconcileFunc) Reconcile(ctx context.Context, key Key) (Result, error) { return f(ctx, key) }

// terminalError marks an error that retrying cannot fix.
type terminalError struct{ err error }

func (e *terminalError) Error() string { return "terminal: " + e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }

// Terminal wraps err so that the Controller logs it and does not retry the
// key (until something queues it again). Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err: err}
}

// IsTerminal reports whether err (or an error it wraps) came from Terminal.
func IsTerminal(err error) bool {
	var t *terminalError
	return errors.As(err, &t)
}

// MapFunc maps a changed object to the keys to reconcile (an owner, a
// namespace, ...).
type MapFunc func(obj api.Object) []Key

// Options configures a Controller. The zero value is usable.
type Options struct {
	// Workers is how many keys are reconciled at once; default 1.
	Workers int
	// RateLimiter spaces retries; default DefaultRateLimiter.
	RateLimiter RateLimiter
	// Clock drives the queue's delays; default RealClock.
	Clock Clock
	// Logger receives the controller's logs; default slog.Default().
	Logger *slog.Logger
}

// Controller feeds keys from informers (and Queue().Add) through a Queue
// to Workers goroutines that call a Reconciler, as controller-runtime's
// controller does: an error requeues the key with its rate-limited
// back-off, a Terminal error does not, success resets the back-off, and a
// key is never reconciled by two workers at once. Safe for concurrent use.
type Controller struct {
	name    string
	r       Reconciler
	workers int
	queue   *Queue
	log     *slog.Logger

	mu      sync.Mutex
	sources []*Informer // waited for before the workers start
}

// NewController returns a controller named name (for logs) over r.
func NewController(name string, r Reconciler, opts Options) *Controller {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Controller{
		name:    name,
		r:       r,
		workers: opts.Workers,
		queue:   NewQueue(opts.RateLimiter, opts.Clock),
		log:     opts.Logger.With("controller", name),
	}
}

// Name returns the controller's name.
func (c *Controller) Name() string { return c.name }

// Queue returns the controller's work queue, to add keys from sources
// other than informers (a heartbeat watch, a timer).
func (c *Controller) Queue() *Queue { return c.queue }

// Watch queues the keys mapFn gives for every object inf adds, changes or
// deletes (mapFn nil: the object's own key), and makes Run wait until inf
// has synced. Call it before Run.
func (c *Controller) Watch(inf *Informer, mapFn MapFunc) {
	if mapFn == nil {
		mapFn = func(obj api.Object) []Key { return []Key{KeyOf(obj)} }
	}
	enqueue := func(obj api.Object) {
		for _, k := range mapFn(obj) {
			c.queue.Add(k)
		}
	}
	c.mu.Lock()
	c.sources = append(c.sources, inf)
	c.mu.Unlock()
	inf.AddHandler(Handler{
		OnAdd:    enqueue,
		OnUpdate: func(old, obj api.Object) { enqueue(obj) },
		OnDelete: enqueue,
	})
}

// Run waits for the watched informers to sync (something else runs them:
// a Manager), then reconciles with Workers goroutines until ctx ends. It
// shuts the queue down, waits for the workers' current keys, and returns
// nil.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.mu.Lock()
	sources := c.sources
	c.mu.Unlock()
	for _, inf := range sources {
		select {
		case <-inf.Synced():
		case <-ctx.Done():
			return nil
		}
	}
	c.log.Debug("caches synced; starting workers", "workers", c.workers)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// processNext reconciles one key; false when the queue is shut down.
func (c *Controller) processNext(ctx context.Context) bool {
	key, ok := c.queue.Get()
	if !ok {
		return false
	}
	defer c.queue.Done(key)
	if ctx.Err() != nil {
		// Fenced: once the run ends (its lease was lost, or the process
		// stops), a key taken meanwhile is not reconciled.
		return false
	}
	res, err := c.reconcile(ctx, key)
	switch {
	case err != nil && IsTerminal(err):
		c.queue.Forget(key)
		c.log.Error("reconcile failed; not retrying", "key", key.String(), "err", err)
	case err != nil:
		if ctx.Err() != nil {
			return true
		}
		c.queue.AddRateLimited(key)
		c.log.Warn("reconcile failed; retrying", "key", key.String(), "retries", c.queue.NumRequeues(key), "err", err)
	case res.RequeueAfter > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, res.RequeueAfter)
	case res.Requeue:
		c.queue.AddRateLimited(key)
	default:
		c.queue.Forget(key)
	}
	return true
}

// reconcile calls the Reconciler, turning a panic into an error (the key is
// retried; the control plane keeps running).
func (c *Controller) reconcile(ctx context.Context, key Key) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reconcile %s: panic: %v", key, p)
		}
	}()
	return c.r.Reconcile(ctx, key)
}
