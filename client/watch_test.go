package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestWatchRefusesBadNamespace: a namespace that cannot be a subject token
// is a 400 before subscribing, and the client's connection lives (a 4 KB
// subject would have made the server close it).
func TestWatchRefusesBadNamespace(t *testing.T) {
	s := testutil.StartNATS(t)
	nc := testutil.Connect(t, s)
	c := client.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ns := range []string{strings.Repeat("a", 4100), "a.b", "*", ">"} {
		if _, err := c.Watch(ctx, "pod", ns); api.ReasonOf(err) != api.ReasonBadRequest {
			t.Fatalf("watch namespace %.20q: %v, want BadRequest", ns, err)
		}
	}
	if _, err := c.Watch(ctx, "pod", "shop"); err != nil {
		t.Fatalf("watch a valid namespace: %v", err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil || !nc.IsConnected() {
		t.Fatalf("connection after refused watches: %v connected=%v", err, nc.IsConnected())
	}
}
