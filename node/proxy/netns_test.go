package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips without root (nftables and network namespaces), unless
// CI is set.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the proxy tests need root (nftables, network namespaces) and CI is set")
		}
		t.Skip("needs root (nftables, network namespaces)")
	}
}

var nsSeq atomic.Int64

// topo is a test network: a node namespace (where the rules are) with a
// client namespace and pod namespaces, each on a veth of its own.
//
//	client 10.77.0.2 ── 10.77.0.1 node ── 10.77.<i>.1 … pod i 10.77.<i>.2
type topo struct {
	t      testing.TB
	prefix string
	node   string // netns path
	client string
	pods   []string
}

// nodeIP is the node's address the client reaches it on.
const nodeIP = "10.77.0.1"

func podIP(i int) string { return fmt.Sprintf("10.77.%d.2", i+1) }

func ipc(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newTopo(t testing.TB, pods int) *topo {
	t.Helper()
	requireRoot(t)
	tp := &topo{t: t, prefix: fmt.Sprintf("kpx%d-%d", os.Getpid()%100000, nsSeq.Add(1))}
	add := func(name string) string {
		full := tp.prefix + name
		ipc(t, "netns", "add", full)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", full).Run() })
		return "/var/run/netns/" + full
	}
	n := tp.prefix + "n"
	tp.node = add("n")
	ipc(t, "-n", n, "link", "set", "lo", "up")
	if out, err := exec.Command("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("ip_forward: %v %s", err, out)
	}
	link := func(ns string, i int, nodeAddr, peerAddr string) {
		full := tp.prefix + ns
		a, b := fmt.Sprintf("%sa%d", tp.prefix, i), fmt.Sprintf("%sb%d", tp.prefix, i)
		ipc(t, "link", "add", a, "netns", n, "type", "veth", "peer", "name", b, "netns", full)
		ipc(t, "-n", n, "addr", "add", nodeAddr+"/24", "dev", a)
		ipc(t, "-n", n, "link", "set", a, "up")
		ipc(t, "-n", full, "addr", "add", peerAddr+"/24", "dev", b)
		ipc(t, "-n", full, "link", "set", b, "up")
		ipc(t, "-n", full, "link", "set", "lo", "up")
		ipc(t, "-n", full, "route", "add", "default", "via", nodeAddr)
	}
	tp.client = add("c")
	link("c", 0, nodeIP, "10.77.0.2")
	// A node has a default route (its uplink): the client's side stands
	// for it, so that the node's own connections to service IPs route.
	ipc(t, "-n", n, "route", "add", "default", "via", "10.77.0.2")
	for i := range pods {
		tp.pods = append(tp.pods, add(fmt.Sprintf("p%d", i)))
		link(fmt.Sprintf("p%d", i), i+1, fmt.Sprintf("10.77.%d.1", i+1), podIP(i))
	}
	return tp
}

// in runs fn with the calling thread in the network namespace at path:
// sockets fn makes belong to it.
func in(t testing.TB, path string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("setns %s: %v", path, err)
	}
	defer func() {
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("setns back: %v", err)) // the thread would stay in the wrong namespace
		}
	}()
	fn()
}

// listener returns a Listen function that listens in path's namespace.
func listener(t testing.TB, path string) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (ln net.Listener, err error) {
		in(t, path, func() { ln, err = net.Listen(network, addr) })
		return ln, err
	}
}

// serveName serves name over HTTP on addr (TCP) and as a UDP echo (the
// datagram "who" gets name) in the namespace at path.
func serveName(t testing.TB, path, addr, name string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	in(t, path, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			t.Fatal(err)
		}
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	})}
	go srv.Serve(ln)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "who" {
				pc.WriteTo([]byte(name), from)
			}
		}
	}()
	t.Cleanup(func() { srv.Close(); pc.Close() })
}

// dialer dials from the namespace at path.
type dialer struct {
	t    testing.TB
	path string
}

func (d dialer) dial(network, addr string) (c net.Conn, err error) {
	in(d.t, d.path, func() { c, err = net.DialTimeout(network, addr, 2*time.Second) })
	return c, err
}

// get fetches http://addr/ on a new connection and returns the body.
func (d dialer) get(addr string) (string, error) {
	c, err := d.dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return string(b), err
}

// udp asks addr "who" over a new UDP socket.
func (d dialer) udp(addr string) (string, error) {
	c, err := d.dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("who")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// runProxy runs a proxy of cfg on the cache until the test ends.
func runProxy(t testing.TB, p *Proxy) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}
