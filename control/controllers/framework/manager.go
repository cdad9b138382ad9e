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

// Manager owns the shared informers (one per kind) and runs them with the
// controllers added to it. Safe for concurrent use.
type Manager struct {
	w   Watcher
	log *slog.Logger

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

// Run runs every informer and added Runnable until ctx ends (nil) or one
// fails (its error, after the others stopped).
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
	for _, n := range m.runnables {
		g.Go(func() error {
			if err := n.r.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Error("controller stopped", "controller", n.name, "err", err)
				return fmt.Errorf("%s: %w", n.name, err)
			}
			return nil
		})
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
