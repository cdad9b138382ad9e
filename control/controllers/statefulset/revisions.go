package statefulset

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/kybernetes/kybernetes/api"
)

// revisionData is what a set's ControllerRevision holds, as Kubernetes'
// StatefulSet controller stores it: the template, under spec.
type revisionData struct {
	Spec struct {
		Template api.PodTemplateSpec `json:"template"`
	} `json:"spec"`
}

// ownedRevisions returns the ControllerRevisions set controls, from the cache.
func (c *Controller) ownedRevisions(set *api.StatefulSet) []*api.ControllerRevision {
	var out []*api.ControllerRevision
	for _, o := range c.revs.List(set.Namespace, nil) {
		if r := o.(*api.ControllerRevision); api.IsControlledBy(r, set) {
			out = append(out, r)
		}
	}
	return out
}

// syncRevisions makes sure the set's update revision is stored (named as
// Revision(set), numbered one above the highest), deletes old revisions
// beyond revisionHistoryLimit that neither the set's status nor a pod uses,
// and returns the template of the set's current revision (nil when it is
// the update revision or not stored).
func (c *Controller) syncRevisions(ctx context.Context, set *api.StatefulSet, pods []*api.Pod) (*api.PodTemplateSpec, error) {
	update := Revision(set)
	owned := c.ownedRevisions(set)
	var top int64
	found := false
	for _, r := range owned {
		top = max(top, r.Revision)
		found = found || r.Name == update
	}
	if !found {
		var d revisionData
		d.Spec.Template = set.Spec.Template
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encode revision %s: %w", update, err)
		}
		r := &api.ControllerRevision{ObjectMeta: api.ObjectMeta{Name: update, Namespace: set.Namespace,
			Labels: set.Spec.Selector.MatchLabels, OwnerReferences: []api.OwnerReference{api.NewControllerRef(set)}},
			Data: b, Revision: top + 1}
		api.Default(r)
		if err := c.st.Create(ctx, r); err != nil && !api.IsAlreadyExists(err) {
			return nil, fmt.Errorf("statefulset %s/%s: create revision %s: %w", set.Namespace, set.Name, update, err)
		}
	}
	// History: keep revisionHistoryLimit unused revisions, newest first.
	used := map[string]bool{update: true, set.Status.CurrentRevision: true}
	for _, p := range pods {
		used[p.Labels[api.LabelControllerRevisionHash]] = true
	}
	var unused []*api.ControllerRevision
	for _, r := range owned {
		if !used[r.Name] {
			unused = append(unused, r)
		}
	}
	slices.SortFunc(unused, func(a, b *api.ControllerRevision) int { return int(b.Revision - a.Revision) })
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	for _, r := range unused[min(limit, len(unused)):] {
		if _, err := c.st.Delete(ctx, revisionKind, r.Namespace, r.Name, r.ResourceVersion); err != nil && !api.IsNotFound(err) && !api.IsConflict(err) {
			return nil, fmt.Errorf("statefulset %s/%s: delete revision %s: %w", set.Namespace, set.Name, r.Name, err)
		}
	}
	cur := set.Status.CurrentRevision
	if cur == "" || cur == update {
		return nil, nil
	}
	for _, r := range owned {
		if r.Name == cur {
			var d revisionData
			if err := json.Unmarshal(r.Data, &d); err != nil {
				return nil, nil // unreadable: pods get the update revision
			}
			return &d.Spec.Template, nil
		}
	}
	return nil, nil
}
