package framework

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var claimPodKind = api.KindOf(&api.Pod{})

// ClaimPods returns, of the pods in owner's namespace (from the pods
// cache), those owner controls after adopting the orphans it selects and
// releasing the ones it controls but no longer selects (their labels
// changed), as Kubernetes' ControllerRefManager. An owner being deleted
// adopts and releases nothing. Every adoption and release is a
// compare-and-set on a fresh read of the pod from st, made only while it
// still applies. Workload controllers (ReplicaSet, DaemonSet, StatefulSet) call it at
// the start of a reconcile.
func ClaimPods(ctx context.Context, st *store.Store, pods Lister, owner api.Object, sel labels.Selector) ([]*api.Pod, error) {
	m := owner.GetObjectMeta()
	var owned []*api.Pod
	var errs []error
	for _, o := range pods.List(m.Namespace, nil) {
		p := o.(*api.Pod)
		ref := api.ControllerOf(p)
		matches := sel.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == m.UID:
			if !matches && m.DeletionTimestamp == nil && p.DeletionTimestamp == nil {
				if _, err := setOwner(ctx, st, owner, sel, p, false); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			owned = append(owned, p)
		case ref == nil && matches && p.DeletionTimestamp == nil && m.DeletionTimestamp == nil:
			adopted, err := setOwner(ctx, st, owner, sel, p, true)
			if err != nil {
				errs = append(errs, err)
			} else if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	if len(errs) > 0 {
		return owned, fmt.Errorf("%s %s/%s: claim pods: %w", api.KindOf(owner).Name, m.Namespace, m.Name, errs[0])
	}
	return owned, nil
}

// setOwner adopts the orphan pod (adopt) or releases it, on a fresh read,
// only while that still applies; it returns the pod as written, or nil
// when it wrote nothing.
func setOwner(ctx context.Context, st *store.Store, owner api.Object, sel labels.Selector, cached *api.Pod, adopt bool) (*api.Pod, error) {
	uid := owner.GetObjectMeta().UID
	var out *api.Pod
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, claimPodKind, cached.Namespace, cached.Name)
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		if adopt {
			if ref := api.ControllerOf(p); ref != nil && ref.UID == uid && p.DeletionTimestamp == nil {
				out = p // adopted already; the cache has not shown it yet
				return nil
			}
			if api.ControllerOf(p) != nil || p.DeletionTimestamp != nil || !sel.Matches(labels.Set(p.Labels)) {
				return nil
			}
			p.OwnerReferences = append(p.OwnerReferences, api.NewControllerRef(owner))
			if err := st.Update(ctx, p); err != nil {
				return err
			}
			out = p
			return nil
		}
		refs := slices.DeleteFunc(slices.Clone(p.OwnerReferences), func(r api.OwnerReference) bool { return r.UID == uid })
		if len(refs) == len(p.OwnerReferences) || sel.Matches(labels.Set(p.Labels)) {
			return nil
		}
		if len(refs) == 0 {
			refs = nil
		}
		p.OwnerReferences = refs
		if err := st.Update(ctx, p); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil && !api.IsNotFound(err) {
		verb := "release"
		if adopt {
			verb = "adopt"
		}
		return nil, fmt.Errorf("%s pod %s: %w", verb, cached.Name, err)
	}
	return out, nil
}
