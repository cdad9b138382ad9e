package controlplane_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

func startCP(t *testing.T, tls string) *controlplane.ControlPlane {
	t.Helper()
	cp, err := controlplane.Start(context.Background(), controlplane.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLS: tls, Sync: "1s",
	}, slog.New(slog.NewTextHandler(testWriter(t), nil)))
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() { _ = cp.Shutdown() })
	return cp
}

// connectAs connects to cp with creds (none: anonymously) and the CA.
func connectAs(t testing.TB, cp *controlplane.ControlPlane, creds []byte, extra ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	var opts []nats.Option
	if creds != nil {
		o, err := client.CredsOption(creds)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, o)
	}
	tlsOpt, err := client.TLSOption(cp.Authority().CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, tlsOpt, nats.MaxReconnects(0), nats.Timeout(3*time.Second))
	nc, err := nats.Connect(cp.ClientURL(), append(opts, extra...)...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func adminCreds(t testing.TB, cp *controlplane.ControlPlane) []byte {
	t.Helper()
	b, err := cp.Authority().AdminCreds()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isAuthErr(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization"))
}

// permErr waits for the asynchronous permissions violation the server
// sends after a denied publish or subscribe.
func permErrs(t *testing.T) (nats.Option, <-chan error) {
	ch := make(chan error, 16)
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case ch <- err:
		default:
		}
	}), ch
}

func wantPermViolation(t *testing.T, ch <-chan error, subject string) {
	t.Helper()
	select {
	case err := <-ch:
		if !strings.Contains(err.Error(), "Permissions Violation") || !strings.Contains(err.Error(), subject) {
			t.Fatalf("want a permissions violation on %s, got %v", subject, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no permissions violation for %s", subject)
	}
}

func TestAnonymousConnectRefused(t *testing.T) {
	for _, mode := range []string{"on", "off"} {
		t.Run("tls="+mode, func(t *testing.T) {
			cp := startCP(t, mode)
			_, err := connectAs(t, cp, nil)
			if !isAuthErr(err) {
				t.Fatalf("anonymous connect: want an authorization violation, got %v", err)
			}
			// Credentials of another cluster are refused too.
			other, err := auth.LoadOrCreate(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			foreign, _ := other.AdminCreds()
			if _, err := connectAs(t, cp, foreign); !isAuthErr(err) {
				t.Fatalf("foreign credentials: want an authorization violation, got %v", err)
			}
			// And a bare token that is no join token.
			if _, err := connectAs(t, cp, nil, nats.Token("s3cret")); !isAuthErr(err) {
				t.Fatalf("bogus token: want an authorization violation, got %v", err)
			}
		})
	}
}

func TestAdminUsesOnlyTheAPI(t *testing.T) {
	cp := startCP(t, "on")
	errOpt, errs := permErrs(t)
	nc, err := connectAs(t, cp, adminCreds(t, cp), errOpt)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	c := client.New(nc)
	ctx := context.Background()
	if _, err := c.Get(ctx, "Namespace", "", "default"); err != nil {
		t.Fatalf("admin get namespace: %v", err)
	}
	// Raw JetStream is not reachable, not even for the admin.
	for _, subj := range []string{
		"$JS.API.STREAM.DELETE.KV_kyb-objects",
		"$KV.kyb-objects.pod.default.evil",
		"$O.kyb-modules.C.x",
		"kyb.agent.n1.pods",
	} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		wantPermViolation(t, errs, subj)
	}
	// The state is intact.
	if _, err := c.Get(ctx, "Namespace", "", "default"); err != nil {
		t.Fatalf("get after the attempts: %v", err)
	}
}

func TestTLSClientRefusesAnotherCA(t *testing.T) {
	cp := startCP(t, "on")
	other, err := auth.LoadOrCreate(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tlsOpt, _ := client.TLSOption(other.CAPEM())
	credsOpt, _ := client.CredsOption(adminCreds(t, cp))
	_, err = nats.Connect(cp.ClientURL(), tlsOpt, credsOpt, nats.MaxReconnects(0))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error, got %v", err)
	}
}

func TestJoinRejectsAServerOfAnotherCA(t *testing.T) {
	cp := startCP(t, "on")
	tok, _, err := cp.Tokens().Create(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := api.ParseJoinToken(tok)
	p.CAHash = strings.Repeat("ab", 32) // a token pinning some other CA
	_, err = client.Join(context.Background(), cp.ClientURL(), p.String(), "n1")
	if err == nil || !strings.Contains(err.Error(), "pins") {
		t.Fatalf("want the pinned-CA check to fail, got %v", err)
	}
}

func join(t *testing.T, cp *controlplane.ControlPlane, name string) []byte {
	t.Helper()
	tok, _, err := cp.Tokens().Create(context.Background(), time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := client.Join(context.Background(), cp.ClientURL(), tok, name)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	return nc.Creds
}

func TestNodeIdentity(t *testing.T) {
	cp := startCP(t, "on")
	creds := join(t, cp, "n1")
	errOpt, errs := permErrs(t)
	nc, err := connectAs(t, cp, creds, errOpt, nats.CustomInboxPrefix(auth.InboxPrefix("n1")))
	if err != nil {
		t.Fatalf("node connect: %v", err)
	}
	ctx := context.Background()
	// Its own verbs answer.
	reg := []byte(`{"metadata":{"name":"n1"}}`)
	if _, err := client.New(nc).Request(ctx, api.NodeSubject("n1", api.NodeVerbRegister), reg); err != nil {
		t.Fatalf("register n1: %v", err)
	}
	// Another node's subjects, the agent subjects and the API are closed.
	for _, subj := range []string{
		api.NodeSubject("n2", api.NodeVerbHeartbeat),
		"kyb.agent.n1.pods",
		"kyb.agent.n2.pods",
		api.SubjectApply,
		"kyb.logs.n2.default.p.c",
		"$JS.API.STREAM.DELETE.KV_kyb-objects",
	} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		wantPermViolation(t, errs, subj)
	}
	if _, err := nc.Subscribe("kyb.agent.n2.pods", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	wantPermViolation(t, errs, "kyb.agent.n2.pods")
	if _, err := nc.Subscribe("_INBOX.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	wantPermViolation(t, errs, "_INBOX.>")
}

func TestRevokedNodeCannotReconnect(t *testing.T) {
	cp := startCP(t, "on")
	creds := join(t, cp, "n1")
	closed := make(chan struct{})
	nc, err := connectAs(t, cp, creds, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("node connect: %v", err)
	}
	admin, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	var rr api.RevokeReply
	b, err := client.New(admin).Request(context.Background(), api.SubjectRevoke, []byte(`{"kind":"node","name":"n1"}`))
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_ = rr
	_ = b
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the revoked node's connection is still open (status %v)", nc.Status())
	}
	if _, err := connectAs(t, cp, creds); !isAuthErr(err) {
		t.Fatalf("reconnect with revoked credentials: want an authorization violation, got %v", err)
	}
	// A new join (with a valid token) gives working credentials again.
	if _, err := connectAs(t, cp, join(t, cp, "n1")); err != nil {
		t.Fatalf("connect with credentials issued after the revocation: %v", err)
	}
}

func TestExpiredTokenRefused(t *testing.T) {
	cp := startCP(t, "on")
	tok, exp, err := cp.Tokens().Create(context.Background(), time.Second, "short")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	_, err = client.Join(context.Background(), cp.ClientURL(), tok, "n1")
	if !isAuthErr(err) {
		t.Fatalf("join with an expired token: want an authorization violation, got %v", err)
	}
}

func TestOnlyAdminMakesTokensAndUsers(t *testing.T) {
	cp := startCP(t, "on")
	admin, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := client.New(admin).Request(ctx, api.SubjectTokenCreate, []byte(`{"ttl":"1h"}`))
	if err != nil || !strings.Contains(string(b), api.JoinTokenPrefix) {
		t.Fatalf("admin token create: %s %v", b, err)
	}
	// A user made by the admin can connect, but cannot make tokens.
	dir := t.TempDir()
	cfgPath, err := client.CreateUser(ctx, client.New(admin), "bob", cp.ClientURL(), filepath.Join(dir, "bob"))
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	cfg, err := client.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.Options()
	if err != nil {
		t.Fatal(err)
	}
	bob, err := nats.Connect(cfg.Server, opts...)
	if err != nil {
		t.Fatalf("bob connects: %v", err)
	}
	defer bob.Close()
	_, err = client.New(bob).Request(ctx, api.SubjectTokenCreate, []byte(`{}`))
	var st *api.Status
	if !errors.As(err, &st) || st.Code != 403 || !strings.Contains(st.Message, "bob") {
		t.Fatalf("bob token create: want 403 naming bob, got %v", err)
	}
	if _, err := os.Stat(cfgPath); err != nil {
		t.Fatal(err)
	}
}

type tw struct{ t testing.TB }

func (w tw) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }

func testWriter(t testing.TB) io.Writer {
	if os.Getenv("KYB_TEST_LOG") != "" {
		return tw{t}
	}
	return io.Discard
}

// userConn creates user name with the admin's connection and connects as
// that user with the config `kyb user create` writes.
func userConn(t *testing.T, admin *nats.Conn, cp *controlplane.ControlPlane, name string) *nats.Conn {
	t.Helper()
	path, err := client.CreateUser(context.Background(), client.New(admin), name, cp.ClientURL(), filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	cfg, err := client.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(cfg.Server, opts...)
	if err != nil {
		t.Fatalf("%s connects: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestViewUserCannotDelete(t *testing.T) {
	cp := startCP(t, "on")
	admin, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ac := client.New(admin)
	if _, err := ac.Apply(ctx, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: viewer-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: viewer}]
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: busybox}]}
`)); err != nil {
		t.Fatalf("apply binding and pod: %v", err)
	}
	viewer := client.New(userConn(t, admin, cp, "viewer"))
	if _, err := viewer.Get(ctx, "Pod", "default", "p"); err != nil {
		t.Fatalf("viewer get pod: %v", err)
	}
	_, err = viewer.Delete(ctx, api.DeleteRequest{Kind: "pod", Namespace: "default", Name: "p"})
	var st *api.Status
	if !errors.As(err, &st) || st.Code != 403 || !strings.Contains(st.Message, "viewer") || !strings.Contains(st.Message, "delete") {
		t.Fatalf("viewer delete pod: want 403 naming viewer and delete, got %v", err)
	}
	if _, err := ac.Get(ctx, "Pod", "default", "p"); err != nil {
		t.Fatalf("the pod is still there: %v", err)
	}
}

// TestTokenCannotTakeOverANode: a join token admits new nodes, but not a
// second holder of a name that already has credentials, until they are
// revoked.
func TestTokenCannotTakeOverANode(t *testing.T) {
	cp := startCP(t, "on")
	join(t, cp, "n1")
	tok, _, err := cp.Tokens().Create(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Join(context.Background(), cp.ClientURL(), tok, "n1")
	var st *api.Status
	if !errors.As(err, &st) || st.Code != 409 || !strings.Contains(st.Message, "kyb node revoke n1") {
		t.Fatalf("second join as n1: want 409 naming the revoke, got %v", err)
	}
	admin, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.New(admin).Revoke(context.Background(), "node", "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Join(context.Background(), cp.ClientURL(), tok, "n1"); err != nil {
		t.Fatalf("join after the revocation: %v", err)
	}
}
