package controlplane_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// member is one server of a test cluster.
type member struct {
	name, dir, listen, cluster string
	cp                         *controlplane.ControlPlane
}

func clusterConfig(m *member) controlplane.Config {
	return controlplane.Config{
		DataDir: m.dir, Listen: m.listen, TLS: "on", Sync: "1s", Name: m.name, ClusterListen: m.cluster,
		ServerBeat: 500 * time.Millisecond, LeaseDuration: 2 * time.Second, RenewInterval: 500 * time.Millisecond,
	}
}

func newMember(t testing.TB, name string) *member {
	return &member{name: name, dir: t.TempDir(), listen: freeAddr(t), cluster: freeAddr(t)}
}

// startMember starts m with cfg changes applied by edit; the start runs
// in the background (a first server waits for a second one).
func startMember(t testing.TB, m *member, edit func(*controlplane.Config)) <-chan error {
	t.Helper()
	cfg := clusterConfig(m)
	if edit != nil {
		edit(&cfg)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	go func() {
		defer cancel()
		cp, err := controlplane.Start(ctx, cfg, slog.New(slog.NewTextHandler(testWriter(t), nil)).With("server", m.name))
		if err == nil {
			m.cp = cp
		}
		done <- err
	}()
	return done
}

func wait(t testing.TB, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: not started after 60s", what)
	}
}

func serverToken(t testing.TB, m *member) string {
	t.Helper()
	var tok string
	testutil.Eventually(t, 10*time.Second, func() error {
		var err error
		tok, err = auth.ReadServerToken(filepath.Join(m.dir, "pki"))
		return err
	})
	return tok
}

func stopMember(m *member) {
	if m.cp != nil {
		_ = m.cp.Shutdown()
		m.cp = nil
	}
}

// startCluster grows a cluster from one server: a joins nobody, b and c
// join a with its server token.
func startCluster(t testing.TB, syncMode ...string) []*member {
	t.Helper()
	a, b, c := newMember(t, "kyb-a"), newMember(t, "kyb-b"), newMember(t, "kyb-c")
	ms := []*member{a, b, c}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Add(1)
			go func() { defer wg.Done(); stopMember(m) }()
		}
		wg.Wait()
	})
	syncOpt := func(cfg *controlplane.Config) {
		if len(syncMode) > 0 {
			cfg.Sync = syncMode[0]
		}
	}
	da := startMember(t, a, syncOpt)
	tok := serverToken(t, a)
	join := func(cfg *controlplane.Config) { syncOpt(cfg); cfg.Join, cfg.JoinToken = "tls://"+a.listen, tok }
	db := startMember(t, b, join)
	wait(t, "b", db)
	wait(t, "a", da)
	wait(t, "c", startMember(t, c, join))
	// Every stream is raised to three replicas, all of them current.
	js := jsOf(t, a.cp)
	ctx := context.Background()
	testutil.Eventually(t, 30*time.Second, func() error {
		for name := range js.StreamNames(ctx).Name() {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return err
			}
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			if r := info.Config.Replicas; r != 3 {
				return fmt.Errorf("stream %s has %d replicas", name, r)
			}
			if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return fmt.Errorf("stream %s has no leader and two followers yet", name)
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current {
					return fmt.Errorf("stream %s: %s is not current", name, r.Name)
				}
			}
		}
		return nil
	})
	return ms
}

func adminClient(t testing.TB, cp *controlplane.ControlPlane) *client.Client {
	t.Helper()
	nc, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	return client.New(nc)
}

func jsOf(t testing.TB, cp *controlplane.ControlPlane) jetstream.JetStream {
	js, err := jetstream.New(cp.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestClusterGrowsFromOneServer: a server joined by two others forms one
// control plane: every server answers the API, every bucket and stream is
// raised to three replicas, the join handed every key to the new servers
// (one CA, one admin), and the status shows three servers and the leases.
func TestClusterGrowsFromOneServer(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	// An object applied through one server is read through the others;
	// the admin credentials of a (written by a's authority) work on c.
	ca := adminClient(t, ms[0].cp)
	if _, err := ca.Apply(ctx, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: ha}\n")); err != nil {
		t.Fatalf("apply through a: %v", err)
	}
	for _, m := range ms[1:] {
		c := adminClient(t, m.cp)
		testutil.Eventually(t, 5*time.Second, func() error {
			_, err := c.Get(ctx, "Namespace", "", "ha")
			return err
		})
	}
	st, err := adminClient(t, ms[1].cp).ClusterStatus(ctx)
	if err != nil {
		t.Fatalf("cluster status: %v", err)
	}
	up := 0
	for _, s := range st.Servers {
		if s.Up {
			up++
		}
	}
	if up != 3 || st.MetaLeader == "" {
		t.Fatalf("status: %d servers up (want 3), meta leader %q: %+v", up, st.MetaLeader, st.Servers)
	}
	objects := false
	for _, s := range st.Streams {
		if s.Name == "KV_kyb-objects" {
			objects = s.Leader != "" && s.Replicas == 3 && len(s.Peers) == 2
		}
	}
	if !objects {
		t.Fatalf("status: the objects bucket has no leader and two followers: %+v", st.Streams)
	}
	// Peer removal refuses a live server, bad names and unknown servers,
	// and changes nothing.
	admin := adminClient(t, ms[0].cp)
	for _, tc := range []struct {
		name string
		code int
	}{
		{"kyb-b", 409}, {"", 400}, {"a.b", 400}, {"x>", 400}, {strings.Repeat("n", 4096), 400}, {"nope", 404},
	} {
		err := admin.RemoveServer(ctx, tc.name)
		var st *api.Status
		if !errors.As(err, &st) || st.Code != tc.code {
			t.Errorf("remove server %.20q: want %d, got %v", tc.name, tc.code, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		st, err := adminClient(t, ms[2].cp).ClusterStatus(ctx)
		if err != nil {
			return err
		}
		for _, l := range st.Leases {
			if l.Holder == "" {
				return fmt.Errorf("lease %s has no holder", l.Name)
			}
		}
		return nil
	})
}

// TestRevocationReachesEveryServer: a node connected to one server is
// disconnected when its credentials are revoked through another.
func TestRevocationReachesEveryServer(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	admin := adminClient(t, ms[0].cp)
	// One node per server, so at least two are revoked on a server other
	// than the one that answers the revocation.
	type joined struct {
		name  string
		creds []byte
		nc    *nats.Conn
	}
	var nodes []joined
	for i, m := range ms {
		name := fmt.Sprintf("n%d", i)
		tok, _, err := admin.CreateToken(ctx, time.Hour, name)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := client.Join(ctx, "tls://"+ms[(i+1)%3].listen, tok, name)
		if err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		if len(creds.Servers) != 3 {
			t.Errorf("join reply names %d servers, want 3: %v", len(creds.Servers), creds.Servers)
		}
		nc, err := connectAs(t, m.cp, creds.Creds, nats.CustomInboxPrefix(api.InboxPrefix(name)), nats.NoCallbacksAfterClientClose())
		if err != nil {
			t.Fatalf("node %s connect to %s: %v", name, m.name, err)
		}
		nodes = append(nodes, joined{name, creds.Creds, nc})
	}
	for _, n := range nodes {
		if err := admin.Revoke(ctx, "node", n.name); err != nil {
			t.Fatalf("revoke %s: %v", n.name, err)
		}
	}
	for i, n := range nodes {
		testutil.Eventually(t, 10*time.Second, func() error {
			if !n.nc.IsClosed() && n.nc.Status() == nats.CONNECTED {
				if err := n.nc.Publish(api.NodeSubject(n.name, api.NodeVerbHeartbeat), nil); err != nil {
					return err
				}
				if err := n.nc.FlushTimeout(time.Second); err != nil {
					return err
				}
				return fmt.Errorf("node %s is still connected to %s after its revocation", n.name, ms[i].name)
			}
			return nil
		})
	}
	nc := struct{ Creds []byte }{nodes[0].creds}
	// And it cannot come back on any server.
	for _, m := range ms {
		if _, err := connectAs(t, m.cp, nc.Creds); !isAuthErr(err) {
			t.Fatalf("revoked node connects to %s: %v", m.name, err)
		}
	}
}

// TestServerJoinRefusals: a node token gets no keys; a bad server token
// gets nothing; a server that already belongs to a cluster does not
// install another's keys.
func TestServerJoinRefusals(t *testing.T) {
	cp := startCP(t, "on")
	ctx := context.Background()
	admin := adminClient(t, cp)
	nodeTok, _, err := admin.CreateToken(ctx, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	// A node token presented as a server token: refused by the client and,
	// asked directly, by the server.
	if _, err := client.JoinServer(ctx, cp.ClientURL(), nodeTok, "evil", ""); err == nil {
		t.Fatal("a node token joined a server")
	}
	p, _ := api.ParseJoinToken(nodeTok)
	forged := api.JoinToken{CAHash: p.CAHash, ID: api.ServerTokenID, Secret: p.Secret}.String()
	if _, err := client.JoinServer(ctx, cp.ClientURL(), forged, "evil", ""); !isAuthErr(err) {
		t.Fatalf("a server token with a wrong secret: %v", err)
	}
	tlsOpt, _ := client.TLSOption(cp.Authority().CAPEM())
	nc, err := nats.Connect(cp.ClientURL(), nats.Token(nodeTok), tlsOpt)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = client.New(nc).Request(ctx, api.SubjectJoin, []byte(`{"server":true,"name":"evil"}`))
	if !api.IsForbidden(err) {
		t.Fatalf("a node token asking for the server bundle: want 403, got %v", err)
	}
	tok, err := auth.ReadServerToken(filepath.Join(cp.Authority().CAPath(), ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.JoinServer(ctx, cp.ClientURL(), tok, strings.Repeat("a", 4096), ""); err == nil {
		t.Error("a server join with a 4 KB name succeeded")
	}
	for _, name := range []string{strings.Repeat("a", 300), "Bad.Name", ""} {
		var st *api.Status
		if _, err := client.JoinServer(ctx, cp.ClientURL(), tok, name, ""); !errors.As(err, &st) || st.Code != 400 || !strings.Contains(st.Message, "name") {
			t.Errorf("server join as %.20q: want 400, got %v", name, err)
		}
	}
	reply, err := client.JoinServer(ctx, cp.ClientURL(), tok, "ok", "")
	if err != nil {
		t.Fatalf("server join: %v", err)
	}
	if _, ok := reply.PKI["server.key"]; ok {
		t.Fatal("the bundle carries the answering server's own key")
	}
	for _, bad := range []string{"../x", "server.key", ".hidden", strings.Repeat("a", 4096)} {
		files := map[string][]byte{}
		for k, v := range reply.PKI {
			files[k] = v
		}
		files[bad] = []byte("x")
		if err := auth.InstallPKI(t.TempDir(), files, p.CAHash); err == nil {
			t.Errorf("install of a bundle with file %q succeeded", bad[:min(len(bad), 20)])
		}
	}
	if err := auth.InstallPKI(t.TempDir(), reply.PKI, strings.Repeat("0", 64)); err == nil {
		t.Error("install of a bundle whose CA is not the token's succeeded")
	}
	if err := auth.InstallPKI(filepath.Join(cp.Authority().CAPath(), ".."), reply.PKI, p.CAHash); err == nil {
		t.Error("install over an existing CA succeeded")
	}
}

// TestStaticPeers: three servers started with --peers naming each other
// (sharing one PKI directory, copied from the first) form one cluster.
func TestStaticPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers creating their buckets at once take about 20 s to settle")
	}
	ms := []*member{newMember(t, "kyb-x"), newMember(t, "kyb-y"), newMember(t, "kyb-z")}
	t.Cleanup(func() {
		for _, m := range ms {
			stopMember(m)
		}
	})
	peers := func(self *member) []string {
		var out []string
		for _, m := range ms {
			if m != self {
				out = append(out, m.cluster)
			}
		}
		return out
	}
	first := startMember(t, ms[0], func(c *controlplane.Config) { c.Peers = peers(ms[0]) })
	serverToken(t, ms[0]) // the PKI exists
	src := filepath.Join(ms[0].dir, "pki")
	var dones []<-chan error
	for _, m := range ms[1:] {
		if err := os.CopyFS(filepath.Join(m.dir, "pki"), os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		// Each server issues its own certificate for its own addresses.
		os.Remove(filepath.Join(m.dir, "pki", "server.crt"))
		os.Remove(filepath.Join(m.dir, "pki", "server.key"))
		dones = append(dones, startMember(t, m, func(c *controlplane.Config) { c.Peers = peers(m) }))
	}
	wait(t, "x", first)
	for i, d := range dones {
		wait(t, ms[i+1].name, d)
	}
	ctx := context.Background()
	testutil.Eventually(t, 30*time.Second, func() error {
		st, err := adminClient(t, ms[2].cp).ClusterStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Streams {
			if s.Replicas != 3 || s.Leader == "" {
				return fmt.Errorf("stream %s: %d replicas, leader %q", s.Name, s.Replicas, s.Leader)
			}
		}
		return nil
	})
}

// TestAgentRidesThroughServerLoss: an agent connected to one server moves
// to another when that server stops, registers and syncs again there, and
// runs a pod bound to it afterwards.
func TestAgentRidesThroughServerLoss(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	admin := adminClient(t, ms[1].cp)
	tok, _, err := admin.CreateToken(ctx, time.Hour, "n1")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := client.Join(ctx, "tls://"+ms[0].listen, tok, "n1")
	if err != nil {
		t.Fatal(err)
	}
	// As the agent does: the server it was given first, then every
	// server its join named.
	urls := []string{"tls://" + ms[0].listen}
	for _, u := range creds.Servers {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	credsOpt, _ := client.CredsOption(creds.Creds)
	tlsOpt, _ := client.TLSOption(creds.CA)
	nc, err := nats.Connect(strings.Join(urls, ","), credsOpt, tlsOpt, nats.DontRandomize(),
		nats.CustomInboxPrefix(auth.InboxPrefix("n1")), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rt, err := fake.New(fake.Config{Name: api.RuntimeWasm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := node.New(node.Config{Name: "n1", DataDir: t.TempDir()}, nc,
		map[string]runtimes.Runtime{api.RuntimeWasm: rt}, slog.New(slog.NewTextHandler(testWriter(t), nil)))
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(actx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, 20*time.Second, func() error {
		o, err := admin.Get(ctx, "Node", "", "n1")
		if err != nil {
			return err
		}
		if !o.(*api.Node).IsReady() {
			return errors.New("node n1 not ready")
		}
		return nil
	})
	connectedTo := nc.ConnectedUrl()
	stopMember(ms[0])
	testutil.Eventually(t, 20*time.Second, func() error {
		if nc.Status() != nats.CONNECTED || nc.ConnectedUrl() == connectedTo {
			return fmt.Errorf("agent on %s (%v)", nc.ConnectedUrl(), nc.Status())
		}
		return nil
	})
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"after","namespace":"default"},` +
		`"spec":{"nodeName":"n1","runtimeClassName":"wasm","containers":[{"name":"app","image":"file:///m.wasm"}]}}`
	testutil.Eventually(t, 30*time.Second, func() error {
		_, err := admin.Apply(ctx, []byte(pod))
		return err
	})
	testutil.Eventually(t, 30*time.Second, func() error {
		o, err := admin.Get(ctx, "Pod", "default", "after")
		if err != nil {
			return err
		}
		if p := o.(*api.Pod); p.Status.Phase != api.PodRunning {
			return fmt.Errorf("pod after is %q", p.Status.Phase)
		}
		return nil
	})
	t.Logf("the agent moved from %s to %s and runs a pod bound after the move", connectedTo, nc.ConnectedUrl())
}
