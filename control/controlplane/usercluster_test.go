package controlplane_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestUserConfigNamesEveryServer: the config `kyb user create` writes on a
// 3-server cluster names every server's client URL (the one it was made
// through first), so the user's kyb still reaches the cluster when that
// server is gone.
func TestUserConfigNamesEveryServer(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	admin := adminClient(t, ms[0].cp)
	if _, err := admin.Apply(ctx, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: carol-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: carol}]
`)); err != nil {
		t.Fatalf("bind carol: %v", err)
	}
	path, err := client.CreateUser(ctx, admin, "carol", ms[0].cp.ClientURL(), filepath.Join(t.TempDir(), "carol"))
	if err != nil {
		t.Fatalf("create user through %s: %v", ms[0].name, err)
	}
	cfg, err := client.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != ms[0].cp.ClientURL() {
		t.Fatalf("config server %q; want %q (the server it was made through)", cfg.Server, ms[0].cp.ClientURL())
	}
	for _, m := range ms[1:] {
		if !slices.Contains(cfg.Servers, m.cp.ClientURL()) {
			t.Fatalf("config servers %v lack %s's %s", cfg.Servers, m.name, m.cp.ClientURL())
		}
	}
	if slices.Contains(cfg.Servers, cfg.Server) {
		t.Fatalf("config servers %v repeat the server %s", cfg.Servers, cfg.Server)
	}
	opts, err := cfg.Options()
	if err != nil {
		t.Fatal(err)
	}
	stopMember(ms[0])
	nc, err := nats.Connect(cfg.URL(), append(opts, nats.Timeout(3*time.Second))...)
	if err != nil {
		t.Fatalf("carol connects with %s gone: %v", ms[0].name, err)
	}
	defer nc.Close()
	carol := client.New(nc)
	testutil.Eventually(t, 30*time.Second, func() error {
		_, err := carol.Get(ctx, "Namespace", "", api.DefaultNamespace)
		return err
	})
}
