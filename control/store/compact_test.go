package store

import (
	"context"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestCompact(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range []string{"a", "b", "c"} {
		if err := s.Create(ctx, newPod("default", n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"a", "b"} {
		if _, err := s.Delete(ctx, podKind, "default", n, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, nodeKind, "", "n1", ""); err != nil {
		t.Fatal(err)
	}

	t.Run("recent markers stay", func(t *testing.T) {
		n, err := s.Compact(ctx, time.Hour)
		if err != nil || n != 0 {
			t.Fatalf("Compact(1h) = %d, %v; want 0", n, err)
		}
	})
	t.Run("old markers go", func(t *testing.T) {
		n, err := s.Compact(ctx, 0)
		if err != nil || n != 3 {
			t.Fatalf("Compact(0) = %d, %v; want 3", n, err)
		}
		info, err := s.stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 1 {
			t.Fatalf("stream holds %d messages; want 1 (pod c)", info.State.Msgs)
		}
		objs, _, err := s.List(ctx, podKind, ListOptions{})
		if err != nil || len(objs) != 1 || objs[0].GetObjectMeta().Name != "c" {
			t.Fatalf("list after compact = %v, %v; want c", objs, err)
		}
		if n, err := s.Compact(ctx, 0); err != nil || n != 0 {
			t.Fatalf("second Compact = %d, %v; want 0", n, err)
		}
	})
	t.Run("names are free again", func(t *testing.T) {
		if err := s.Create(ctx, newPod("default", "a", nil)); err != nil {
			t.Fatal(err)
		}
		ch, err := s.Watch(ctx, podKind, 0)
		if err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ch, "ADDED default/c", "ADDED default/a", "SYNCED")
	})
	t.Run("empty bucket", func(t *testing.T) {
		if n, err := newStore(t).Compact(ctx, 0); err != nil || n != 0 {
			t.Fatalf("Compact on an empty bucket = %d, %v", n, err)
		}
	})
}
