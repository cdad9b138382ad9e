package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// portForwardDialTimeout bounds the dial of a pod's port: a port nobody
// listens on is a quick error, not a hang.
const portForwardDialTimeout = 3 * time.Second

// portForward carries one connection to the pod's port: the session's
// stdin is what the client sends, its stdout what the port answers. A
// container pod's port is dialled at the pod's IP from inside the node
// (127.0.0.1 for host network pods); a wasm pod's port is served in
// process by its WAGI handler. The exit code is 0 when the connection
// ended cleanly.
func (s *execSession) portForward(t *execTarget) (int32, error) {
	port := s.start.Port
	if port < 1 || port > 65535 {
		return -1, api.NewBadRequest("port: %d is not a TCP port", port)
	}
	var conn net.Conn
	if srv, ok := t.rt.(runtimes.HTTPServer); ok && t.rtName == api.RuntimeWasm {
		// A wasm container serves its declared ports in process (or in
		// its host process): the same path a Service's request takes.
		if !slices.Contains(t.ports, port) {
			return -1, api.NewBadRequest("port-forward to pod %s port %d: the container does not declare that port (a wasm container serves the TCP ports it declares)", s.start.Pod, port)
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if err := srv.ServeContainerHTTP(t.id, port, w, req); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
		})
		client, server := net.Pipe()
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(&oneConnListener{c: server}) }()
		defer srv.Close()
		conn = client
	} else {
		host := t.ip
		if host == "" {
			host = "127.0.0.1"
		}
		d := net.Dialer{Timeout: portForwardDialTimeout}
		c, err := d.DialContext(s.ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return -1, api.NewBadRequest("port-forward to pod %s port %d: %v", s.start.Pod, port, err)
		}
		conn = c
	}
	defer conn.Close()
	s.started()
	go func() {
		<-s.ctx.Done()
		conn.Close()
	}()
	up := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, s.stdin)
		if tc, ok := conn.(*net.TCPConn); ok && err == nil {
			_ = tc.CloseWrite()
		}
		up <- err
	}()
	_, err := io.Copy(s.sender(api.FrameStdout), conn)
	if s.ctx.Err() != nil {
		return -1, fmt.Errorf("port-forward: %w", context.Cause(s.ctx))
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		return -1, fmt.Errorf("port-forward to pod %s port %d: %w", s.start.Pod, port, err)
	}
	return 0, nil
}

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	mu     sync.Mutex
	c      net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *oneConnListener) init() { l.once.Do(func() { l.closed = make(chan struct{}) }) }

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.init()
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
