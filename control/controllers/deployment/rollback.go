package deployment

import (
	"fmt"
	"slices"

	"github.com/kybernetes/kybernetes/api"
)

// Owned returns the ReplicaSets among rsets that d controls, oldest
// revision first.
func Owned(d *api.Deployment, rsets []api.Object) []*api.ReplicaSet {
	var out []*api.ReplicaSet
	for _, o := range rsets {
		if rs, ok := o.(*api.ReplicaSet); ok && api.IsControlledBy(rs, d) {
			out = append(out, rs)
		}
	}
	slices.SortFunc(out, func(a, b *api.ReplicaSet) int {
		ra, rb := Revision(a), Revision(b)
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	})
	return out
}

// RollbackTemplate returns the pod template d should take to roll back to
// revision toRevision (0: the revision before the current one), from the
// ReplicaSets d controls (owned, as Owned returns them), without the
// pod-template-hash label, as `kubectl rollout undo` does. It fails when
// that revision is not kept (revisionHistoryLimit deleted it) or there is
// no earlier revision.
func RollbackTemplate(d *api.Deployment, owned []*api.ReplicaSet, toRevision int64) (*api.PodTemplateSpec, int64, error) {
	var target *api.ReplicaSet
	if toRevision == 0 {
		cur := Revision(d)
		for _, rs := range owned {
			if r := Revision(rs); r != cur && (target == nil || r > Revision(target)) && r < cur {
				target = rs
			}
		}
		if target == nil {
			return nil, 0, fmt.Errorf("deployment %q: no rollout history found to undo to", d.Name)
		}
	} else {
		for _, rs := range owned {
			if Revision(rs) == toRevision {
				target = rs
			}
		}
		if target == nil {
			return nil, 0, fmt.Errorf("deployment %q: unable to find the specified revision %d", d.Name, toRevision)
		}
	}
	t := api.DeepCopy(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Template: target.Spec.Template}}).Spec.Template
	delete(t.Labels, api.LabelPodTemplateHash)
	return &t, Revision(target), nil
}
