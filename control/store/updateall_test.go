package store

import (
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func TestUpdateAll(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	a, b, c := newPod("default", "a", nil), newPod("default", "b", nil), newPod("default", "c", nil)
	for _, p := range []*api.Pod{a, b, c} {
		if err := s.Create(ctx, p); err != nil {
			t.Fatalf("create %s: %v", p.Name, err)
		}
	}
	// b is changed by someone else; c is deleted.
	b2 := *b
	b2.Labels = map[string]string{"x": "y"}
	if err := s.Update(ctx, &b2); err != nil {
		t.Fatalf("update b: %v", err)
	}
	if _, err := s.Delete(ctx, api.KindOf(c), "default", "c", ""); err != nil {
		t.Fatalf("delete c: %v", err)
	}
	oldRV := a.ResourceVersion
	a.Spec.NodeName, b.Spec.NodeName, c.Spec.NodeName = "n1", "n1", "n1"
	noRV := newPod("default", "d", nil)
	errs := s.UpdateAll(ctx, []api.Object{a, b, c, noRV})
	if errs[0] != nil {
		t.Fatalf("a: %v", errs[0])
	}
	if a.ResourceVersion == oldRV {
		t.Fatalf("a: resourceVersion not updated")
	}
	if !api.IsConflict(errs[1]) || !api.IsConflict(errs[2]) {
		t.Fatalf("b, c: got %v, %v; want Conflict", errs[1], errs[2])
	}
	if errs[3] == nil || api.ReasonOf(errs[3]) != api.ReasonBadRequest {
		t.Fatalf("no resourceVersion: got %v, want BadRequest", errs[3])
	}
	got, err := s.Get(ctx, api.KindOf(a), "default", "a")
	if err != nil {
		t.Fatalf("get a: %v", err)
	}
	if p := got.(*api.Pod); p.Spec.NodeName != "n1" || p.ResourceVersion != a.ResourceVersion || p.UID != a.UID {
		t.Fatalf("stored a: node %q rv %s uid %s; want n1, %s, %s", p.Spec.NodeName, p.ResourceVersion, p.UID, a.ResourceVersion, a.UID)
	}
	// A stale second write of a loses.
	stale := *got.(*api.Pod)
	stale.ResourceVersion = oldRV
	if errs := s.UpdateAll(ctx, []api.Object{&stale}); !api.IsConflict(errs[0]) {
		t.Fatalf("stale write: got %v, want Conflict", errs[0])
	}
}
