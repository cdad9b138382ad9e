package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/kybernetes/kybernetes/api"
)

// Runnable is a component a Manager runs: it returns nil when ctx ends, or
// an error that stops the others.
type Runnable interface {
	Run(ctx context.Context) error
}

// Elector runs fn only while this process holds a leader lease, cancelling
// fn's context as soon as the lease is lost; *store.Lease implements it.
// Hold returns nil when ctx ends, fn's error when fn fails, and an error
// wrapping store.ErrLeaseLost when leadership is lost.
type Elector interface {
	Hold(ctx context.Context, fn func(context.Context) error) error
}

// Manager owns the shared informers (one per kind) and runs them with the
// controllers added to it. With an Elector (SetElector) the informers start
// at once, so caches are warm, but the controllers run only while this
// process holds the manager's lease. Safe for concurrent use.
type Manager struct {
	w       Watcher
	log     *slog.Logger
	elector Elector

	mu        sync.Mutex
	informers map[*api.Kind]*Informer
	runnables []named
	ctx       context.Context // set while Run runs
	group     *errgroup.Group
}

type named struct {
	name string
	r    Runnable
}

// NewManager returns a manager whose informers read w (a *store.Store).
func NewManager(w Watcher, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{w: w, log: log, informers: make(map[*api.Kind]*Informer)}
}

// Informer returns the shared informer of kind, creating it on first use;
// one asked for while Run runs starts at once.
func (m *Manager) Informer(kind *api.Kind) *Informer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inf, ok := m.informers[kind]; ok {
		return inf
	}
	inf := NewInformer(m.w, kind, m.log)
	m.informers[kind] = inf
	if m.group != nil {
		ctx := m.ctx
		m.group.Go(func() error { return inf.Run(ctx) })
	}
	return inf
}

// Add registers a controller (or any Runnable) to run with the informers.
// Call it before Run.
func (m *Manager) Add(name string, r Runnable) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runnables = append(m.runnables, named{name, r})
}

// SetElector makes Run start the added Runnables only while e holds the
// lease. Call it before Run.
func (m *Manager) SetElector(e Elector) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.elector = e
}

// Run runs every informer and added Runnable until ctx ends (nil) or one
// fails (its error, after the others stopped). With an Elector, the
// Runnables start once the lease is held; when it is lost they are
// cancelled and Run returns an error wrapping the elector's (lease lost)
// after everything stopped. A Manager runs once: after a lost lease, build
// a new one (its controllers' queues are shut down), as Kubernetes restarts
// a controller manager that lost leadership.
func (m *Manager) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	m.mu.Lock()
	if m.group != nil {
		m.mu.Unlock()
		return errors.New("controller manager: already running")
	}
	m.ctx, m.group = gctx, g
	for _, inf := range m.informers {
		g.Go(func() error { return inf.Run(gctx) })
	}
	runnables := append([]named(nil), m.runnables...)
	runAll := func(ctx context.Context) error {
		rg, rctx := errgroup.WithContext(ctx)
		for _, n := range runnables {
			rg.Go(func() error {
				if err := n.r.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
					m.log.Error("controller stopped", "controller", n.name, "err", err)
					return fmt.Errorf("%s: %w", n.name, err)
				}
				return nil
			})
		}
		return rg.Wait()
	}
	if e := m.elector; e != nil {
		g.Go(func() error {
			if err := e.Hold(gctx, runAll); err != nil {
				return fmt.Errorf("controller manager: %w", err)
			}
			return nil
		})
	} else {
		g.Go(func() error { return runAll(gctx) })
	}
	m.mu.Unlock()
	err := g.Wait()
	m.mu.Lock()
	m.ctx, m.group = nil, nil
	m.mu.Unlock()
	return err
}

// WaitForSync blocks until every informer created so far has synced (true)
// or ctx ends (false).
func (m *Manager) WaitForSync(ctx context.Context) bool {
	m.mu.Lock()
	infs := make([]*Informer, 0, len(m.informers))
	for _, inf := range m.informers {
		infs = append(infs, inf)
	}
	m.mu.Unlock()
	for _, inf := range infs {
		select {
		case <-inf.Synced():
		case <-ctx.Done():
			return false
		}
	}
	return true
}
