package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var podKind = api.KindOf(&api.Pod{})

// Config configures the collector. The zero value is usable.
type Config struct {
	// Workers is how many objects of one kind are checked at once; default 2.
	Workers int
	// DefaultGracePeriod is the grace period of a collected pod that names
	// none; default 30s.
	DefaultGracePeriod time.Duration
}

// Collector deletes objects whose owners are gone. Create it with New and
// add it to its Manager. Safe for concurrent use.
type Collector struct {
	st    *store.Store
	mgr   *framework.Manager
	cfg   Config
	log   *slog.Logger
	kinds []*api.Kind
	ctls  map[*api.Kind]*framework.Controller
	nodes replicaset.NodeExists
}

// New returns a collector over st whose caches are mgr's informers of
// every namespaced kind but Event.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Collector {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.DefaultGracePeriod <= 0 {
		cfg.DefaultGracePeriod = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "garbagecollector")
	gc := &Collector{st: st, mgr: mgr, cfg: cfg, log: log, ctls: map[*api.Kind]*framework.Controller{},
		nodes: replicaset.StoreNodeExists(st)}
	for _, k := range api.Kinds() {
		if !k.Namespaced || k == api.EventKind() {
			continue
		}
		gc.kinds = append(gc.kinds, k)
	}
	for _, k := range gc.kinds {
		ctl := framework.NewController("garbagecollector-"+k.Plural, framework.ReconcileFunc(func(ctx context.Context, key framework.Key) (framework.Result, error) {
			return framework.Result{}, gc.reconcile(ctx, k, key)
		}), framework.Options{Workers: cfg.Workers, Logger: log})
		gc.ctls[k] = ctl
		inf := mgr.Informer(k)
		ctl.Watch(inf, func(obj api.Object) []framework.Key {
			if len(obj.GetObjectMeta().OwnerReferences) == 0 && waitingFinalizer(obj) == "" {
				return nil
			}
			return []framework.Key{framework.KeyOf(obj)}
		})
	}
	for _, k := range gc.kinds {
		inf := mgr.Informer(k)
		// A deleted object's dependents may now be garbage; a dependent's
		// change may let its owner's foreground or orphan deletion finish.
		inf.AddHandler(framework.Handler{
			OnAdd:    gc.enqueueDeletingOwners,
			OnUpdate: func(_, obj api.Object) { gc.enqueueDeletingOwners(obj) },
			OnDelete: func(obj api.Object) {
				gc.enqueueDependents(obj)
				gc.enqueueDeletingOwners(obj)
			},
		})
	}
	return gc
}

// Run collects until ctx ends (the Manager runs the informers) and returns
// nil then.
func (gc *Collector) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, ctl := range gc.ctls {
		g.Go(func() error { return ctl.Run(gctx) })
	}
	return g.Wait()
}

// enqueueDependents queues every cached object that names owner's uid.
func (gc *Collector) enqueueDependents(owner api.Object) {
	m := owner.GetObjectMeta()
	ns := m.Namespace
	for _, k := range gc.kinds {
		for _, obj := range gc.mgr.Informer(k).Lister().List(ns, nil) {
			if slices.ContainsFunc(obj.GetObjectMeta().OwnerReferences, func(r api.OwnerReference) bool { return r.UID == m.UID }) {
				gc.ctls[k].Queue().Add(framework.KeyOf(obj))
			}
		}
	}
}

// waitingFinalizer returns the collector's finalizer on an object marked
// for deletion ("" when none).
func waitingFinalizer(obj api.Object) string {
	m := obj.GetObjectMeta()
	if m.DeletionTimestamp == nil {
		return ""
	}
	for _, f := range []string{api.FinalizerOrphanDependents, api.FinalizerDeleteDependents} {
		if slices.Contains(m.Finalizers, f) {
			return f
		}
	}
	return ""
}

// enqueueDeletingOwners queues the owners of obj that wait for their
// dependents (foreground or orphan deletion).
func (gc *Collector) enqueueDeletingOwners(obj api.Object) {
	m := obj.GetObjectMeta()
	for _, ref := range m.OwnerReferences {
		k, err := api.LookupKind(ref.Kind)
		if err != nil {
			continue
		}
		ctl := gc.ctls[k]
		if ctl == nil {
			continue
		}
		if o, ok := gc.mgr.Informer(k).Lister().Get(m.Namespace, ref.Name); ok && waitingFinalizer(o) != "" {
			ctl.Queue().Add(framework.Key{Namespace: m.Namespace, Name: ref.Name})
		}
	}
}

// dependent is one cached object that names an owner.
type dependent struct {
	kind *api.Kind
	obj  api.Object
}

// dependents returns the cached objects that name owner's uid.
func (gc *Collector) dependents(owner api.Object) []dependent {
	m := owner.GetObjectMeta()
	var out []dependent
	for _, k := range gc.kinds {
		for _, obj := range gc.mgr.Informer(k).Lister().List(m.Namespace, nil) {
			if slices.ContainsFunc(obj.GetObjectMeta().OwnerReferences, func(r api.OwnerReference) bool { return r.UID == m.UID }) {
				out = append(out, dependent{k, obj})
			}
		}
	}
	return out
}

// finish handles an object marked for foreground or orphan deletion: its
// dependents are deleted (foreground: pods gracefully, other objects
// marked for foreground deletion in turn) or released (orphan), and once
// none names it, the finalizer is removed and the object deleted.
func (gc *Collector) finish(ctx context.Context, k *api.Kind, owner api.Object, finalizer string) error {
	m := owner.GetObjectMeta()
	deps := gc.dependents(owner)
	var errs []error
	for _, d := range deps {
		dm := d.obj.GetObjectMeta()
		var err error
		switch {
		case finalizer == api.FinalizerOrphanDependents:
			err = gc.dropRefs(ctx, d.kind, d.obj, []string{m.UID}, true)
		case d.kind == podKind:
			if dm.DeletionTimestamp == nil {
				err = replicaset.DeletePod(ctx, gc.st, gc.nodes, dm.Namespace, dm.Name, dm.UID, gc.cfg.DefaultGracePeriod)
			}
		case waitingFinalizer(d.obj) == "":
			err = gc.mark(ctx, d.kind, d.obj, api.FinalizerDeleteDependents)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if finalizer == api.FinalizerDeleteDependents && len(deps) > 0 {
		return nil // their deletions queue the owner again
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := gc.st.Get(ctx, k, m.Namespace, m.Name)
		if err != nil {
			return err
		}
		cur := obj.GetObjectMeta()
		if cur.UID != m.UID || !slices.Contains(cur.Finalizers, finalizer) {
			return nil
		}
		cur.Finalizers = slices.DeleteFunc(slices.Clone(cur.Finalizers), func(f string) bool { return f == finalizer })
		if len(cur.Finalizers) > 0 {
			return gc.st.Update(ctx, obj)
		}
		_, err = gc.st.Delete(ctx, k, m.Namespace, m.Name, cur.ResourceVersion)
		return err
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("finish deleting %s %s/%s: %w", k.Name, m.Namespace, m.Name, err)
	}
	gc.log.Info("deleted object after its dependents", "kind", k.Name, "name", m.Name, "namespace", m.Namespace, "finalizer", finalizer)
	return nil
}

// mark marks a dependent for deletion with finalizer (compare-and-set).
func (gc *Collector) mark(ctx context.Context, k *api.Kind, cached api.Object, finalizer string) error {
	m := cached.GetObjectMeta()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := gc.st.Get(ctx, k, m.Namespace, m.Name)
		if err != nil {
			return err
		}
		cur := obj.GetObjectMeta()
		if cur.UID != m.UID || cur.DeletionTimestamp != nil {
			return nil
		}
		now := time.Now().UTC().Truncate(time.Second)
		cur.DeletionTimestamp = &now
		cur.Finalizers = append(cur.Finalizers, finalizer)
		return gc.st.Update(ctx, obj)
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("mark %s %s/%s for deletion: %w", k.Name, m.Namespace, m.Name, err)
	}
	return nil
}

// ownerPresent reports whether the owner ref names exists (with its uid)
// for a dependent in namespace ns.
func (gc *Collector) ownerPresent(ctx context.Context, ns string, ref api.OwnerReference) (bool, error) {
	k, err := api.LookupKind(ref.Kind)
	if err != nil {
		return false, nil // no such kind: it can never exist
	}
	if !k.Namespaced {
		ns = ""
	}
	if obj, ok := gc.mgr.Informer(k).Lister().Get(ns, ref.Name); ok && obj.GetObjectMeta().UID == ref.UID {
		return true, nil
	}
	obj, err := gc.st.Get(ctx, k, ns, ref.Name)
	if api.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up owner %s %s: %w", ref.Kind, ref.Name, err)
	}
	return obj.GetObjectMeta().UID == ref.UID, nil
}

// reconcile deletes the object when none of its owners is present, or
// drops the references to owners that are gone.
func (gc *Collector) reconcile(ctx context.Context, k *api.Kind, key framework.Key) error {
	obj, ok := gc.mgr.Informer(k).Lister().Get(key.Namespace, key.Name)
	if !ok {
		return nil
	}
	if f := waitingFinalizer(obj); f != "" {
		return gc.finish(ctx, k, obj, f)
	}
	if len(obj.GetObjectMeta().OwnerReferences) == 0 {
		return nil
	}
	m := obj.GetObjectMeta()
	var gone []string
	present := 0
	for _, ref := range m.OwnerReferences {
		ok, err := gc.ownerPresent(ctx, m.Namespace, ref)
		if err != nil {
			return err
		}
		if ok {
			present++
		} else {
			gone = append(gone, ref.UID)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if present > 0 {
		return gc.dropRefs(ctx, k, obj, gone, false)
	}
	return gc.delete(ctx, k, obj)
}

// delete removes an object whose owners are all gone: a pod as the
// apiserver deletes pods, anything else with compare-and-set on the
// revision read, checking again from the store that its owners are gone
// (an owner reference may have been changed meanwhile).
func (gc *Collector) delete(ctx context.Context, k *api.Kind, cached api.Object) error {
	m := cached.GetObjectMeta()
	if k == podKind {
		if m.DeletionTimestamp != nil {
			return nil
		}
		gc.log.Info("deleting pod whose owners are gone", "pod", m.Name, "namespace", m.Namespace)
		return replicaset.DeletePod(ctx, gc.st, gc.nodes, m.Namespace, m.Name, m.UID, gc.cfg.DefaultGracePeriod)
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := gc.st.Get(ctx, k, m.Namespace, m.Name)
		if err != nil {
			return err
		}
		cur := obj.GetObjectMeta()
		if cur.UID != m.UID || !slices.EqualFunc(cur.OwnerReferences, m.OwnerReferences, func(a, b api.OwnerReference) bool { return a.UID == b.UID }) {
			return nil // changed: its own event brings it back
		}
		_, err = gc.st.Delete(ctx, k, m.Namespace, m.Name, cur.ResourceVersion)
		return err
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("collect %s %s/%s: %w", k.Name, m.Namespace, m.Name, err)
	}
	if err == nil {
		gc.log.Info("deleted object whose owners are gone", "kind", k.Name, "name", m.Name, "namespace", m.Namespace)
	}
	return nil
}

// dropRefs removes the references to owners that are gone (to an owner
// orphaning it, with allowNone).
func (gc *Collector) dropRefs(ctx context.Context, k *api.Kind, cached api.Object, gone []string, allowNone bool) error {
	m := cached.GetObjectMeta()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := gc.st.Get(ctx, k, m.Namespace, m.Name)
		if err != nil {
			return err
		}
		cur := obj.GetObjectMeta()
		if cur.UID != m.UID {
			return nil
		}
		refs := slices.DeleteFunc(slices.Clone(cur.OwnerReferences), func(r api.OwnerReference) bool { return slices.Contains(gone, r.UID) })
		if len(refs) == len(cur.OwnerReferences) {
			return nil
		}
		if len(refs) == 0 && !allowNone {
			return errors.New("every owner gone meanwhile") // reconciled again
		}
		if len(refs) == 0 {
			refs = nil
		}
		cur.OwnerReferences = refs
		return gc.st.Update(ctx, obj)
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("drop owner references of %s %s/%s: %w", k.Name, m.Namespace, m.Name, err)
	}
	return nil
}
