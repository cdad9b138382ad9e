package node_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
)

func TestServersKept(t *testing.T) {
	dir := t.TempDir()
	if urls, err := node.LoadServers(dir); err != nil || urls != nil {
		t.Fatalf("no file: %v %v", urls, err)
	}
	long := "nats://" + strings.Repeat("a", 4096) + ":4222"
	if err := node.SaveServers(dir, []string{"tls://b:4222", "tls://a:4222", "tls://b:4222", "", long}); err != nil {
		t.Fatal(err)
	}
	urls, err := node.LoadServers(dir)
	if err != nil || !slices.Equal(urls, []string{"tls://a:4222", "tls://b:4222"}) {
		t.Fatalf("kept %v, %v", urls, err)
	}
	s := testutil.StartNATS(t)
	nc := testutil.Connect(t, s, nats.DontRandomize())
	node.TrackServers(nc, dir, nil)
	urls, _ = node.LoadServers(dir)
	if len(urls) != 1 || !strings.Contains(s.ClientURL(), strings.TrimPrefix(urls[0], "nats://")) {
		t.Fatalf("tracked %v, want %s", urls, s.ClientURL())
	}
	if err := os.WriteFile(filepath.Join(dir, node.ServersFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := node.LoadServers(dir); err == nil {
		t.Fatal("a corrupt file loads")
	}
}
