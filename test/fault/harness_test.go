package fault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	buildOnce sync.Once
	kybBin    string
	buildErr  error
)

// enabled skips t unless the fault tests are asked for.
func enabled(t testing.TB) {
	t.Helper()
	if testing.Short() || (os.Getenv("CI") != "true" && os.Getenv("KYB_FAULT") == "") {
		t.Skip("fault tests with real processes: set KYB_FAULT=1 (CI=true runs them)")
	}
}

// kyb builds the kyb binary once per test run.
func kyb(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kyb-fault-bin")
		if err != nil {
			buildErr = err
			return
		}
		kybBin = filepath.Join(dir, "kyb")
		out, err := exec.Command("go", "build", "-o", kybBin, "github.com/kybernetes/kybernetes/cmd/kyb").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build kyb: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return kybBin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is one `kyb server` process and what it needs to start again.
type server struct {
	t                 testing.TB
	name, dir         string
	host              string // the address it listens on
	port, clusterPort int
	netns             string // run inside this network namespace, if set
	extra             []string
	cmd               *exec.Cmd
	exited            chan struct{}
	log               *os.File
}

// url is the server's client URL.
func (s *server) url() string { return fmt.Sprintf("tls://%s:%d", s.host, s.port) }

func (s *server) args() []string {
	a := []string{"server", "--data-dir", s.dir, "--name", s.name, "--tls", "on",
		"--listen", fmt.Sprintf("%s:%d", s.host, s.port),
		"--lease-duration", "2s", "--renew-interval", "500ms",
		// No dashboard, no /metrics: the servers share one host.
		"--http", "", "--metrics-listen", "off"}
	if s.clusterPort != 0 {
		a = append(a, "--cluster-listen", fmt.Sprintf("%s:%d", s.host, s.clusterPort))
	}
	return append(a, s.extra...)
}

// start runs the server; it does not wait for it to answer.
func (s *server) start() {
	s.t.Helper()
	bin := kyb(s.t)
	args := s.args()
	if s.netns != "" {
		args = append([]string{"netns", "exec", s.netns, bin}, args...)
		bin = "ip"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+s.dir) // keep ~/.kyb/config out of the real home
	if s.log == nil {
		f, err := os.Create(filepath.Join(s.t.TempDir(), s.name+".log"))
		if err != nil {
			s.t.Fatal(err)
		}
		s.log = f
	}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.name, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
}

// kill sends SIGKILL (kill -9) to the server (its whole process group:
// `ip netns exec` execs, but be sure) and waits for it to exit.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// stop sends SIGTERM and waits (a clean stop, as a rolling restart does).
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// creds are the admin credentials and CA of the cluster (every server
// writes its own admin.creds, signed by the same account key).
func (s *server) creds(t testing.TB) ([]byte, []byte) {
	t.Helper()
	var creds, ca []byte
	testutil.Eventually(t, 60*time.Second, func() error {
		var err error
		if creds, err = os.ReadFile(filepath.Join(s.dir, "admin.creds")); err != nil {
			return err
		}
		ca, err = os.ReadFile(filepath.Join(s.dir, "server", "pki", auth.CACertFile))
		return err
	})
	return creds, ca
}

// connect opens an admin connection to urls (any of them).
func connect(t testing.TB, creds, ca []byte, urls ...string) *nats.Conn {
	t.Helper()
	co, err := client.CredsOption(creds)
	if err != nil {
		t.Fatal(err)
	}
	to, err := client.TLSOption(ca)
	if err != nil {
		t.Fatal(err)
	}
	opts := []nats.Option{co, to, nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.Timeout(2 * time.Second)}
	if len(urls) == 1 {
		// Pinned to one server: never moved to another the cluster advertises.
		opts = append(opts, nats.IgnoreDiscoveredServers())
	}
	var nc *nats.Conn
	testutil.Eventually(t, 60*time.Second, func() error {
		nc, err = nats.Connect(strings.Join(urls, ","), opts...)
		return err
	})
	t.Cleanup(nc.Close)
	return nc
}

// waitAPI waits until a get through nc answers.
func waitAPI(t testing.TB, nc *nats.Conn, within time.Duration) {
	t.Helper()
	c := client.New(nc)
	testutil.Eventually(t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.Get(ctx, "Namespace", "", "default")
		return err
	})
}

// retryable is the documented client retry policy (docs/ha.md): a request
// that timed out, found no responder, or got 503 is sent again (apply is
// idempotent); anything else is an answer.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var st *api.Status
	if errors.As(err, &st) {
		return st.Code >= 500
	}
	return true // timeouts, no responders, a connection lost mid-request
}

// load is clients applying Namespaces until stopped, each recording the
// names the API acknowledged.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    []string
	ackTimes []time.Time
	// sentTimes[i] is when the attempt acknowledged at ackTimes[i] was sent.
	sentTimes []time.Time
	failed    []error // requests that failed even after the retry policy
	attempts  atomic.Int64
	errs      atomic.Int64 // attempts that failed (retried or not)
}

// startLoad starts n clients on conns (round robin); with retries, a
// failed apply is retried per the policy for up to retryFor.
func startLoad(t testing.TB, conns []*nats.Conn, n int, prefix string, retryFor time.Duration, timeout time.Duration) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < n; i++ {
		c := client.New(conns[i%len(conns)])
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-l.stop:
					return
				default:
				}
				name := fmt.Sprintf("%s-%d-%d", prefix, i, j)
				m := []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n")
				deadline := time.Now().Add(retryFor)
				for {
					l.attempts.Add(1)
					sent := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					_, err := c.Apply(ctx, m)
					cancel()
					if err == nil {
						l.mu.Lock()
						l.acked = append(l.acked, name)
						l.ackTimes = append(l.ackTimes, time.Now())
						l.sentTimes = append(l.sentTimes, sent)
						l.mu.Unlock()
						break
					}
					l.errs.Add(1)
					stopped := false
					select {
					case <-l.stop:
						stopped = true
					default:
					}
					if !retryable(err) || time.Now().After(deadline) || stopped {
						if !stopped {
							l.mu.Lock()
							l.failed = append(l.failed, fmt.Errorf("apply %s: %w", name, err))
							l.mu.Unlock()
						}
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
}

// firstAckAfter is the first acknowledgement of a request sent at or
// after t0 (a request in flight at t0 does not count).
func (l *load) firstAckAfter(t0 time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for i, at := range l.ackTimes {
		if !l.sentTimes[i].Before(t0) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// missing returns the acknowledged names the API does not have.
func (l *load) missing(t testing.TB, nc *nats.Conn) []string {
	t.Helper()
	c := client.New(nc)
	var out []string
	for attempt := 0; attempt < 20; attempt++ {
		if out = l.missingOnce(t, c); len(out) == 0 {
			return nil
		}
		t.Logf("attempt %d: %d acknowledged writes not listed yet, e.g. %s", attempt, len(out), out[0])
		time.Sleep(500 * time.Millisecond)
	}
	return out
}

func (l *load) missingOnce(t testing.TB, c *client.Client) []string {
	have := map[string]bool{}
	testutil.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		objs, _, err := c.List(ctx, api.ListRequest{Kind: "Namespace"})
		if err != nil {
			return err
		}
		for _, o := range objs {
			have[o.GetObjectMeta().Name] = true
		}
		return nil
	})
	var out []string
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.acked {
		if !have[n] {
			out = append(out, n)
		}
	}
	return out
}

// cluster is three servers.
type cluster struct {
	servers []*server
}

// startCluster starts three servers: the first alone, the others joining
// it with its server token. hosts gives each server's address (and netns
// each one's namespace, if any).
func startCluster(t testing.TB, hosts []string, netns []string) *cluster {
	t.Helper()
	c := &cluster{}
	for i := 0; i < 3; i++ {
		s := &server{t: t, name: fmt.Sprintf("s%d", i), dir: t.TempDir(), host: hosts[i], port: freePort(t), clusterPort: freePort(t)}
		if netns != nil {
			s.netns = netns[i]
			s.port, s.clusterPort = 4222, 6222
		}
		c.servers = append(c.servers, s)
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			s.kill()
		}
		if t.Failed() {
			for _, s := range c.servers {
				t.Logf("log of %s:\n%s", s.name, s.logTail())
			}
		}
	})
	first := c.servers[0]
	first.start()
	var tok string
	testutil.Eventually(t, 30*time.Second, func() error {
		var err error
		tok, err = auth.ReadServerToken(filepath.Join(first.dir, "server", "pki"))
		return err
	})
	// One at a time, as an operator adds servers: the second makes the
	// quorum, the third makes every stream go to three replicas.
	for _, s := range c.servers[1:] {
		s.extra = []string{"--join", first.url(), "--token", tok}
		s.start()
		s.creds(t) // written once the server is up
	}
	creds, ca := first.creds(t)
	nc := connect(t, creds, ca, c.urls()...)
	waitAPI(t, nc, 60*time.Second)
	// Three replicas everywhere before the faults begin.
	cc := client.New(nc)
	testutil.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cc.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		return allCurrent(st, 3)
	})
	return c
}

// allCurrent checks that n servers are up and every stream has n replicas,
// a leader and current followers.
func allCurrent(st *api.ClusterStatus, n int) error {
	up := 0
	for _, s := range st.Servers {
		if s.Up {
			up++
		}
	}
	if up != n {
		return fmt.Errorf("%d servers up, want %d", up, n)
	}
	if len(st.Streams) == 0 {
		return errors.New("no streams")
	}
	for _, s := range st.Streams {
		if s.Replicas != n || s.Leader == "" || len(s.Peers) != n-1 {
			return fmt.Errorf("stream %s: %d replicas, leader %q, %d followers", s.Name, s.Replicas, s.Leader, len(s.Peers))
		}
		for _, p := range s.Peers {
			if !p.Current || p.Offline {
				return fmt.Errorf("stream %s: %s is not current", s.Name, p.Name)
			}
		}
	}
	return nil
}

func (c *cluster) urls() []string {
	var out []string
	for _, s := range c.servers {
		out = append(out, s.url())
	}
	return out
}

func (c *cluster) byName(name string) *server {
	for _, s := range c.servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

// streamLeader returns the server leading stream.
func streamLeader(t testing.TB, nc *nats.Conn, stream string) string {
	t.Helper()
	var leader string
	testutil.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := client.New(nc).ClusterStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Streams {
			if s.Name == stream && s.Leader != "" {
				leader = s.Leader
				return nil
			}
		}
		return fmt.Errorf("stream %s has no leader", stream)
	})
	return leader
}

var _ = bytes.MinRead
