package testutil

import (
	"fmt"
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
