package endpointslice

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
)

var (
	serviceKind = api.KindOf(&api.Service{})
	sliceKind   = api.KindOf(&api.EndpointSlice{})
	podKind     = api.KindOf(&api.Pod{})
	nodeKind    = api.KindOf(&api.Node{})
)

// Config configures the controller. The zero value is usable.
type Config struct {
	// Workers is how many Services are reconciled at once; default 2.
	Workers int
}

// Controller keeps the EndpointSlices and the LoadBalancer status of
// Services. Create it with New and add it to its Manager.
type Controller struct {
	st       *store.Store
	log      *slog.Logger
	services framework.Lister
	pods     framework.Lister
	nodes    framework.Lister
	slices   framework.Lister
	ctl      *framework.Controller
}

// New returns a controller over st that reads Services, pods, nodes and
// EndpointSlices from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "endpointslice")
	svcInf, podInf, nodeInf, sliceInf := mgr.Informer(serviceKind), mgr.Informer(podKind), mgr.Informer(nodeKind), mgr.Informer(sliceKind)
	c := &Controller{st: st, log: log, services: svcInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(), slices: sliceInf.Lister()}
	c.ctl = framework.NewController("endpointslice", c, framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(svcInf, nil)
	// A slice changed or deleted by someone else is put back.
	c.ctl.Watch(sliceInf, func(obj api.Object) []framework.Key {
		m := obj.GetObjectMeta()
		if m.Labels[api.LabelManagedBy] != ManagedBy || m.Labels[api.LabelServiceName] == "" {
			return nil
		}
		return []framework.Key{{Namespace: m.Namespace, Name: m.Labels[api.LabelServiceName]}}
	})
	// A pod counts for the Services that select it, before and after a
	// change of its labels.
	c.ctl.Watch(nodeInf, func(api.Object) []framework.Key { return nil }) // synced before the workers start
	c.ctl.Watch(podInf, func(api.Object) []framework.Key { return nil })
	podInf.AddHandler(framework.Handler{
		OnAdd:    func(obj api.Object) { c.enqueueFor(obj.(*api.Pod)) },
		OnUpdate: func(old, obj api.Object) { c.enqueueFor(old.(*api.Pod), obj.(*api.Pod)) },
		OnDelete: func(obj api.Object) { c.enqueueFor(obj.(*api.Pod)) },
	})
	// A node's address, readiness or zone changes wasm endpoints on it and
	// every LoadBalancer's ingress.
	nodeInf.AddHandler(framework.Handler{
		OnAdd: func(api.Object) { c.enqueueAll() },
		OnUpdate: func(old, obj api.Object) {
			o, n := old.(*api.Node), obj.(*api.Node)
			if o.IsReady() != n.IsReady() || !slices.Equal(o.Status.Addresses, n.Status.Addresses) || o.Labels[api.LabelTopologyZone] != n.Labels[api.LabelTopologyZone] {
				c.enqueueAll()
			}
		},
		OnDelete: func(api.Object) { c.enqueueAll() },
	})
	return c
}

// Run reconciles until ctx ends (the Manager runs the informers); it
// returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// enqueueFor queues the Services of the pods' namespace that select any of
// them.
func (c *Controller) enqueueFor(pods ...*api.Pod) {
	ns := pods[0].Namespace
	for _, obj := range c.services.List(ns, nil) {
		svc := obj.(*api.Service)
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, p := range pods {
			if sel.Matches(labels.Set(p.Labels)) {
				c.ctl.Queue().Add(framework.KeyOf(svc))
				break
			}
		}
	}
}

// enqueueAll queues every Service (a node changed).
func (c *Controller) enqueueAll() {
	for _, obj := range c.services.List("", nil) {
		c.ctl.Queue().Add(framework.KeyOf(obj))
	}
}

func (c *Controller) node(name string) *api.Node {
	obj, ok := c.nodes.Get("", name)
	if !ok {
		return nil
	}
	return obj.(*api.Node)
}

// Reconcile brings the slices (and a LoadBalancer's ingress) of the
// Service key to what its pods and the nodes are now. A Service that is
// gone leaves its slices to the garbage collector (they are owned by it).
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.services.Get(key.Namespace, key.Name)
	if !ok {
		return framework.Result{}, nil
	}
	svc := obj.(*api.Service)
	if svc.DeletionTimestamp != nil {
		return framework.Result{}, nil
	}
	if err := c.syncLoadBalancer(ctx, svc); err != nil {
		return c.retry(key, err)
	}
	existing := c.slicesOf(svc)
	var p plan
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == api.ServiceTypeExternalName {
		// Not managed here (a selector-less Service's slices are the
		// user's): only the controller's own slices go.
		p.del = existing
	} else {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var eps []endpointOf
		for _, o := range c.pods.List(svc.Namespace, sel) {
			if e, ok := podEndpoint(svc, o.(*api.Pod), c.node); ok {
				eps = append(eps, e)
			}
		}
		p = planSlices(svc, existing, desiredGroups(eps))
	}
	if err := c.write(ctx, p); err != nil {
		return c.retry(key, err)
	}
	return framework.Result{}, nil
}

// retry turns a write that lost to the cache's lag (a conflict, a slice
// created or deleted meanwhile) into a quiet requeue; other errors are the
// framework's to log and retry.
func (c *Controller) retry(key framework.Key, err error) (framework.Result, error) {
	if api.IsConflict(err) || api.IsAlreadyExists(err) || api.IsNotFound(err) {
		c.log.Debug("cache behind the store; again", "service", key.String(), "err", err)
		return framework.Result{Requeue: true}, nil
	}
	return framework.Result{}, err
}

// slicesOf lists the cached slices the controller manages for svc.
func (c *Controller) slicesOf(svc *api.Service) []*api.EndpointSlice {
	sel := labels.SelectorFromSet(labels.Set{api.LabelServiceName: svc.Name, api.LabelManagedBy: ManagedBy})
	var out []*api.EndpointSlice
	for _, o := range c.slices.List(svc.Namespace, sel) {
		out = append(out, o.(*api.EndpointSlice))
	}
	slices.SortFunc(out, func(a, b *api.EndpointSlice) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// write performs a plan: creates and updates first (so a consumer never
// sees an endpoint vanish while it moves), then deletes. A conflict (the
// cache lagged) fails the reconcile, which runs again.
func (c *Controller) write(ctx context.Context, p plan) error {
	for _, s := range p.create {
		if err := c.st.Create(ctx, s); err != nil {
			return fmt.Errorf("create endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	for _, s := range p.update {
		if err := c.st.Update(ctx, s); err != nil {
			return fmt.Errorf("update endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	for _, s := range p.del {
		if _, err := c.st.Delete(ctx, sliceKind, s.Namespace, s.Name, s.ResourceVersion); err != nil && !api.IsNotFound(err) {
			return fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}

// syncLoadBalancer sets a LoadBalancer Service's ingress to the ready
// nodes' addresses (and clears an ingress a Service of another type
// still carries).
func (c *Controller) syncLoadBalancer(ctx context.Context, svc *api.Service) error {
	var want []api.LoadBalancerIngress
	if svc.Spec.Type == api.ServiceTypeLoadBalancer {
		seen := map[string]bool{}
		for _, o := range c.nodes.List("", nil) {
			n := o.(*api.Node)
			if !n.IsReady() || n.DeletionTimestamp != nil {
				continue
			}
			if a := ingressAddress(n); a != "" && !seen[a] {
				seen[a] = true
				want = append(want, api.LoadBalancerIngress{IP: a})
			}
		}
		slices.SortFunc(want, func(a, b api.LoadBalancerIngress) int {
			if a.IP < b.IP {
				return -1
			}
			if a.IP > b.IP {
				return 1
			}
			return 0
		})
	}
	if slices.Equal(want, svc.Status.LoadBalancer.Ingress) {
		return nil
	}
	upd := api.DeepCopy(svc)
	upd.Status.LoadBalancer.Ingress = want
	if err := c.st.Update(ctx, upd); err != nil {
		return fmt.Errorf("update status of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}
