package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var (
	namespaceKind = api.KindOf(&api.Namespace{})
	podKind       = api.KindOf(&api.Pod{})
	nodeKind      = api.KindOf(&api.Node{})
)

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many namespaces are finalized at once; default 2.
	Workers int
	// DefaultGracePeriod is the grace period of a pod that names none;
	// default 30s (the apiserver's default).
	DefaultGracePeriod time.Duration
}

// Controller finalizes terminating namespaces. Create it with New, add it
// to its Manager (or Run it while the Manager runs).
type Controller struct {
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	ns    framework.Lister
	pods  framework.Lister
	nodes framework.Lister
	ctl   *framework.Controller

	// cleared holds the uid of each terminating namespace whose other
	// content was deleted, so the store is listed once per namespace, not
	// on every pod deletion (nothing can be created in a terminating
	// namespace).
	mu      sync.Mutex
	cleared map[string]string
}

// New returns a controller over st that reads namespaces, pods and nodes
// from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.DefaultGracePeriod <= 0 {
		cfg.DefaultGracePeriod = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "namespace")
	nsInf, podInf, nodeInf := mgr.Informer(namespaceKind), mgr.Informer(podKind), mgr.Informer(nodeKind)
	c := &Controller{st: st, cfg: cfg, log: log, ns: nsInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(),
		cleared: make(map[string]string)}
	c.ctl = framework.NewController("namespace", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(nsInf, nil)
	// A pod change matters only in a terminating namespace.
	c.ctl.Watch(podInf, func(obj api.Object) []framework.Key {
		ns := obj.GetObjectMeta().Namespace
		if c.terminating(ns) == nil {
			return nil
		}
		return []framework.Key{{Name: ns}}
	})
	// A node that goes away frees its pods from waiting for their agent.
	nodeInf.AddHandler(framework.Handler{OnDelete: func(api.Object) {
		for _, o := range c.ns.List("", nil) {
			if isTerminating(o.(*api.Namespace)) {
				c.ctl.Queue().Add(framework.Key{Name: o.GetObjectMeta().Name})
			}
		}
	}})
	return c
}

// Run finalizes namespaces until ctx ends (the Manager must run the
// informers); it returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

func isTerminating(ns *api.Namespace) bool {
	return ns.DeletionTimestamp != nil || ns.Status.Phase == api.NamespaceTerminating
}

// terminating returns the cached namespace when it is terminating.
func (c *Controller) terminating(name string) *api.Namespace {
	obj, ok := c.ns.Get("", name)
	if !ok {
		return nil
	}
	if ns := obj.(*api.Namespace); isTerminating(ns) {
		return ns
	}
	return nil
}

// Reconcile finalizes the namespace key.Name if it is terminating: it
// deletes its content and, once the store holds no pod in it, the
// namespace itself (compare-and-set on the revision read).
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	ns := c.terminating(key.Name)
	if ns == nil {
		c.mu.Lock()
		delete(c.cleared, key.Name)
		c.mu.Unlock()
		return framework.Result{}, nil
	}
	c.mu.Lock()
	done := c.cleared[ns.Name] == ns.UID
	c.mu.Unlock()
	if !done {
		if err := c.deleteContent(ctx, ns.Name); err != nil {
			return framework.Result{}, err
		}
		c.mu.Lock()
		c.cleared[ns.Name] = ns.UID
		c.mu.Unlock()
	}
	waiting := 0
	for _, obj := range c.pods.List(ns.Name, nil) {
		pod := obj.(*api.Pod)
		waiting++
		if pod.DeletionTimestamp != nil && c.nodeExists(ctx, pod.Spec.NodeName) {
			continue // its agent stops it and reports it finalized
		}
		if err := c.deletePod(ctx, pod); err != nil {
			return framework.Result{}, err
		}
	}
	if waiting > 0 {
		return framework.Result{}, nil // a pod's deletion queues the namespace again
	}
	return c.remove(ctx, ns.Name)
}

// deleteContent deletes every object of a namespaced kind other than pods
// in namespace ns. It reads the store (once per finalization, not a loop):
// the controller keeps no cache of those kinds.
func (c *Controller) deleteContent(ctx context.Context, ns string) error {
	for _, k := range api.Kinds() {
		if !k.Namespaced || k == podKind {
			continue
		}
		objs, _, err := c.st.List(ctx, k, store.ListOptions{Namespace: ns})
		if err != nil {
			return fmt.Errorf("finalize namespace %s: list %s: %w", ns, k.Plural, err)
		}
		for _, o := range objs {
			name := o.GetObjectMeta().Name
			if _, err := c.st.Delete(ctx, k, ns, name, ""); err != nil && !api.IsNotFound(err) {
				return fmt.Errorf("finalize namespace %s: delete %s %s: %w", ns, k.Name, name, err)
			}
		}
	}
	return nil
}

// nodeExists reports whether node name exists: the cache says so, or, when
// it does not (it may lag a node just registered), the store.
func (c *Controller) nodeExists(ctx context.Context, name string) bool {
	if name == "" {
		return false
	}
	if _, ok := c.nodes.Get("", name); ok {
		return true
	}
	_, err := c.st.Get(ctx, nodeKind, "", name)
	return !api.IsNotFound(err)
}

// deletePod deletes a pod of a terminating namespace the way the apiserver
// does: at once when no agent runs it (unbound, or its node is gone), else
// by marking it for graceful deletion. Each write is a compare-and-set on
// a fresh read.
func (c *Controller) deletePod(ctx context.Context, cached *api.Pod) error {
	ns, name := cached.Namespace, cached.Name
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, podKind, ns, name)
		if err != nil {
			return err
		}
		pod := obj.(*api.Pod)
		if pod.UID != cached.UID {
			return nil // a new pod of the name; it will be seen on its own
		}
		if !c.nodeExists(ctx, pod.Spec.NodeName) {
			_, err := c.st.Delete(ctx, podKind, ns, name, pod.ResourceVersion)
			return err
		}
		if pod.DeletionTimestamp != nil {
			return nil
		}
		g := int64(c.cfg.DefaultGracePeriod / time.Second)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			g = *pod.Spec.TerminationGracePeriodSeconds
		}
		now := time.Now().UTC().Truncate(time.Second)
		pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = &now, &g
		return c.st.Update(ctx, pod)
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: delete pod %s: %w", ns, name, err)
	}
	return nil
}

// remove deletes the namespace when the store (not only the cache, which
// may lag a pod created just before the namespace began terminating) holds
// no pod in it.
func (c *Controller) remove(ctx context.Context, name string) (framework.Result, error) {
	pods, _, err := c.st.List(ctx, podKind, store.ListOptions{Namespace: name})
	if err != nil {
		return framework.Result{}, fmt.Errorf("finalize namespace %s: list pods: %w", name, err)
	}
	if len(pods) > 0 {
		// The cache will see them and queue the namespace; retry anyway.
		return framework.Result{Requeue: true}, nil
	}
	err = retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, namespaceKind, "", name)
		if err != nil {
			return err
		}
		if !isTerminating(obj.(*api.Namespace)) {
			return nil // deleted and created again meanwhile
		}
		_, err = c.st.Delete(ctx, namespaceKind, "", name, obj.GetObjectMeta().ResourceVersion)
		if err == nil {
			c.log.Info("namespace finalized and removed", "namespace", name)
		}
		return err
	})
	if err == nil || api.IsNotFound(err) {
		c.mu.Lock()
		delete(c.cleared, name)
		c.mu.Unlock()
	}
	if err != nil && !api.IsNotFound(err) {
		return framework.Result{}, fmt.Errorf("finalize namespace %s: delete it: %w", name, err)
	}
	return framework.Result{}, nil
}
