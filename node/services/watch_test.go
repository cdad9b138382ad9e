package services

import (
	"context"
	"testing"
	"time"
)

// TestWaitSynced: a cache waits for its first full list, and only for
// that: once listed it answers at once, through later lists too.
func TestWaitSynced(t *testing.T) {
	c := NewCache()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.WaitSynced(ctx); err == nil {
		t.Fatal("an empty cache that never listed is synced")
	}
	c.BeginList()
	c.EndList()
	c.BeginList()
	c.EndList()
	if err := c.WaitSynced(context.Background()); err != nil {
		t.Fatalf("after a list: %v", err)
	}
}
