package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// startAPI runs an apiserver behind NATS accounts (testutil.AccountsConfig)
// and returns the server's URL for a user and password.
func startAPI(t *testing.T) func(user string) string {
	t.Helper()
	s := testutil.StartNATSConfig(t, testutil.AccountsConfig)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	js, err := jetstream.New(testutil.Connect(t, s, nats.InProcessServer(s.Server)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, js, store.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := store.OpenHeartbeats(ctx, js, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := apiserver.New(testutil.Connect(t, s, nats.InProcessServer(s.Server)), st, hb, apiserver.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return func(user string) string {
		u, err := url.Parse(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, user)
		return u.String()
	}
}

func runKyb(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String() + errOut.String(), err
}

func TestAuthCanI(t *testing.T) {
	urlOf := startAPI(t)
	tests := []struct {
		name string
		user string
		args []string
		yes  bool
	}{
		{"admin may delete nodes", "admin", []string{"delete", "nodes"}, true},
		{"admin may do anything", "admin", []string{"*", "*"}, true},
		{"bob may not get pods", "bob", []string{"get", "pods"}, false},
		{"bob may not delete a named pod", "bob", []string{"delete", "pod/web", "-n", "shop"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out string
			var err error
			// The built-in binding of admin is indexed as the apiserver starts.
			testutil.Eventually(t, 5*time.Second, func() error {
				out, err = runKyb(t, append([]string{"--server", urlOf(tt.user), "auth", "can-i"}, tt.args...)...)
				if tt.yes && err != nil {
					return err
				}
				return nil
			})
			var exit ExitError
			switch {
			case tt.yes && (err != nil || out != "yes\n"):
				t.Fatalf("can-i %v = %q, %v; want yes", tt.args, out, err)
			case !tt.yes && (!errors.As(err, &exit) || exit.Code != 1 || out != "no\n"):
				t.Fatalf("can-i %v = %q, %v; want no and exit status 1", tt.args, out, err)
			}
		})
	}
}

func TestGetRBACKinds(t *testing.T) {
	urlOf := startAPI(t)
	var out string
	testutil.Eventually(t, 5*time.Second, func() error {
		var err error
		out, err = runKyb(t, "--server", urlOf("admin"), "get", "roles,clusterroles,rolebindings,clusterrolebindings", "-o", "wide")
		return err
	})
	// roles and rolebindings are empty: their tables are left out.
	for _, want := range []string{"CREATED AT", "cluster-admin", "view", "kyb-admin", "ClusterRole/cluster-admin", "USERS", "admin"} {
		if !strings.Contains(out, want) {
			t.Fatalf("kyb get output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runKyb(t, "--server", urlOf("admin"), "get", "roles,pods", "web"); err == nil {
		t.Fatal("get of several kinds with a NAME did not fail")
	}
	_, err := runKyb(t, "--server", urlOf("bob"), "get", "clusterroles")
	if err == nil || !strings.Contains(err.Error(), `user "bob" cannot list resource "clusterroles"`) {
		t.Fatalf("bob lists clusterroles: %v", err)
	}
}

func TestDescribeRBAC(t *testing.T) {
	urlOf := startAPI(t)
	var out string
	testutil.Eventually(t, 5*time.Second, func() error {
		var err error
		out, err = runKyb(t, "--server", urlOf("admin"), "describe", "clusterrole", "edit")
		return err
	})
	for _, want := range []string{"Name:", "edit", "PolicyRule:", "deployments.apps", "secrets", "[create update delete]"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe clusterrole edit lacks %q:\n%s", want, out)
		}
	}
	out, err := runKyb(t, "--server", urlOf("admin"), "describe", "clusterrolebinding", "kyb-admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Role:", "ClusterRole", "cluster-admin", "Subjects:", "User", "admin"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe clusterrolebinding kyb-admin lacks %q:\n%s", want, out)
		}
	}
}
