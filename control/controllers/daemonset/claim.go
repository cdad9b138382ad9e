package daemonset

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// claim returns, of the pods in ds's namespace, those ds controls after
// adopting the orphans it selects and releasing the ones it controls but
// no longer selects (their labels changed), as Kubernetes'
// ControllerRefManager. A DaemonSet being deleted adopts and releases
// nothing.
func (c *Controller) claim(ctx context.Context, ds *api.DaemonSet, sel labels.Selector) ([]*api.Pod, error) {
	var owned []*api.Pod
	var errs []error
	for _, o := range c.pods.List(ds.Namespace, nil) {
		p := o.(*api.Pod)
		ref := api.ControllerOf(p)
		matches := sel.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == ds.UID:
			if !matches && ds.DeletionTimestamp == nil && p.DeletionTimestamp == nil {
				if _, err := c.setOwner(ctx, ds, sel, p, false); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			owned = append(owned, p)
		case ref == nil && matches && p.DeletionTimestamp == nil && ds.DeletionTimestamp == nil:
			adopted, err := c.setOwner(ctx, ds, sel, p, true)
			if err != nil {
				errs = append(errs, err)
			} else if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	if len(errs) > 0 {
		return owned, fmt.Errorf("daemonset %s/%s: claim pods: %w", ds.Namespace, ds.Name, errs[0])
	}
	return owned, nil
}

// setOwner adopts the orphan pod (adopt) or releases it, on a fresh read,
// only while that still applies; it returns the pod as written, or nil
// when it wrote nothing.
func (c *Controller) setOwner(ctx context.Context, ds *api.DaemonSet, sel labels.Selector, cached *api.Pod, adopt bool) (*api.Pod, error) {
	var out *api.Pod
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, podKind, cached.Namespace, cached.Name)
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		if adopt {
			if ref := api.ControllerOf(p); ref != nil && ref.UID == ds.UID && p.DeletionTimestamp == nil {
				out = p // adopted already; the cache has not shown it yet
				return nil
			}
			if api.ControllerOf(p) != nil || p.DeletionTimestamp != nil || !sel.Matches(labels.Set(p.Labels)) {
				return nil
			}
			p.OwnerReferences = append(p.OwnerReferences, api.NewControllerRef(ds))
			if err := c.st.Update(ctx, p); err != nil {
				return err
			}
			out = p
			return nil
		}
		refs := slices.DeleteFunc(slices.Clone(p.OwnerReferences), func(r api.OwnerReference) bool { return r.UID == ds.UID })
		if len(refs) == len(p.OwnerReferences) || sel.Matches(labels.Set(p.Labels)) {
			return nil
		}
		if len(refs) == 0 {
			refs = nil
		}
		p.OwnerReferences = refs
		if err := c.st.Update(ctx, p); err != nil {
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
