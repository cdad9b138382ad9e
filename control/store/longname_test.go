package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// TestLongNamesRefused: a name or namespace too long for a key is a 400
// naming the field on every operation, and the store's connection lives:
// before this check a 4,100-byte name made the KV subject exceed NATS' 4 KB
// control line, and the server closed the (control plane's) connection.
func TestLongNamesRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	hb, err := OpenHeartbeats(ctx, s.js, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 4100)
	tooLongPod := newPod("default", long, nil)
	tooLongNS := newPod(long, "web", nil)
	cases := []struct {
		name, field string
		op          func() error
	}{
		{"get name", "name", func() error { _, err := s.Get(ctx, podKind, "default", long); return err }},
		{"get namespace", "namespace", func() error { _, err := s.Get(ctx, podKind, long, "web"); return err }},
		{"get node", "name", func() error { _, err := s.Get(ctx, nodeKind, "", long); return err }},
		{"create name", "metadata.name", func() error { return s.Create(ctx, tooLongPod) }},
		{"create namespace", "metadata.namespace", func() error { return s.Create(ctx, tooLongNS) }},
		{"update name", "metadata.name", func() error {
			p := newPod("default", long, nil)
			p.ResourceVersion = "1"
			return s.Update(ctx, p)
		}},
		{"update all", "metadata.name", func() error {
			p := newPod("default", long, nil)
			p.ResourceVersion = "1"
			return s.UpdateAll(ctx, []api.Object{p})[0]
		}},
		{"delete", "name", func() error { _, err := s.Delete(ctx, podKind, "default", long, ""); return err }},
		{"list namespace", "namespace", func() error { _, _, err := s.List(ctx, podKind, ListOptions{Namespace: long}); return err }},
		{"beat", "node name", func() error { return hb.Beat(ctx, long, time.Now()) }},
		{"last beat", "node name", func() error { _, _, err := hb.Last(ctx, long); return err }},
		{"forget", "node name", func() error { return hb.Forget(ctx, long) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			var st *api.Status
			if !errors.As(err, &st) || st.Code != 400 || len(st.Causes) != 1 || st.Causes[0].Field != tc.field {
				t.Fatalf("err = %#v, want a 400 naming %s", err, tc.field)
			}
			// The connection lives: a normal write and read still work.
			p := newPod("default", "alive-"+strings.ReplaceAll(tc.name, " ", "-"), nil)
			if err := s.Create(ctx, p); err != nil {
				t.Fatalf("create after refusal: %v", err)
			}
			if _, err := s.Get(ctx, podKind, "default", p.Name); err != nil {
				t.Fatalf("get after refusal: %v", err)
			}
		})
	}
	// Kubernetes' longest names still work.
	max := newPod(strings.Repeat("n", MaxNamespaceLen), strings.Repeat("x", MaxNameLen), nil)
	if err := s.Create(ctx, max); err != nil {
		t.Fatalf("create with the longest name and namespace: %v", err)
	}
	if _, err := s.Get(ctx, podKind, max.Namespace, max.Name); err != nil {
		t.Fatal(err)
	}
}
