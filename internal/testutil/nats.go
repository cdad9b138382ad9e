package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is a real embedded NATS server with JetStream, for one test.
type Server struct {
	*server.Server
	Dir string
}

// StartNATS starts an embedded NATS server with JetStream on a random
// loopback port, storing in a temporary directory, shut down at cleanup.
func StartNATS(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	return StartNATSAt(t, dir, -1)
}

// StartNATSAt starts an embedded NATS server with JetStream storing in dir,
// on port (-1 for a random one), so a test can restart a server on the same
// data. The server is shut down at cleanup.
func StartNATSAt(t testing.TB, dir string, port int) *Server {
	t.Helper()
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	return start(t, opts, dir)
}

// start starts a server with opts, shut down at cleanup.
func start(t testing.TB, opts *server.Options, dir string) *Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("start nats: not ready after 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Server{Server: s, Dir: dir}
}

// Connect opens a client connection to s, closed at cleanup.
func Connect(t testing.TB, s *Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Eventually calls f until it returns nil or timeout passes, then fails the
// test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	sleep := 5 * time.Millisecond
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(sleep)
		if sleep < 100*time.Millisecond {
			sleep *= 2
		}
	}
}

// Errorf is fmt.Errorf, for Eventually callbacks.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// AccountsConfig is a NATS configuration in the shape of the control
// plane's identity contract (control/authn): the control plane in account
// CP, which anonymous connections (in-process ones too) land in; users in
// USERS (bob, admin; password = user name) and nodes in NODES
// (system:node:n1, system:node:n2; password n1, n2), each reaching the
// apiserver through a service import with share: true, so that the NATS
// server sets the Nats-Request-Info header.
const AccountsConfig = `
no_auth_user: cp
accounts {
  CP: {
    jetstream: enabled
    users: [{user: cp, password: cp}]
    exports: [{service: "kyb.api.v1.>"}, {service: "kyb.node.>"}]
  }
  USERS: {
    users: [{user: bob, password: bob}, {user: admin, password: admin}]
    imports: [{service: {account: CP, subject: "kyb.api.v1.>"}, share: true}]
  }
  NODES: {
    users: [{user: "system:node:n1", password: n1}, {user: "system:node:n2", password: n2}]
    imports: [{service: {account: CP, subject: "kyb.node.>"}, share: true}]
  }
}
`

// StartNATSConfig starts an embedded NATS server from the configuration
// text conf, with JetStream storing in a temporary directory, on a random
// loopback port; it is shut down at cleanup.
func StartNATSConfig(t testing.TB, conf string) *Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats config: %v", err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, filepath.Join(dir, "js")
	opts.NoLog, opts.NoSigs = true, true
	return start(t, opts, dir)
}
