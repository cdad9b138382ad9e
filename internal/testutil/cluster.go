package testutil

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartNATSCluster starts n embedded NATS servers with JetStream on
// loopback, routed into one cluster ("kyb"), storing in temporary
// directories, with every write fsynced before its acknowledgement when
// syncAlways. It returns once JetStream has a meta leader. The servers are
// shut down at cleanup.
func StartNATSCluster(t testing.TB, n int, syncAlways bool) []*Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var out []*Server
	for i := range n {
		dir := t.TempDir()
		opts := &server.Options{
			ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: dir, SyncAlways: syncAlways,
			NoLog: true, NoSigs: true, MaxPayload: 8 << 20,
			Cluster: server.ClusterOpts{Name: "kyb", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		out = append(out, start(t, opts, dir))
	}
	Eventually(t, 30*time.Second, func() error {
		for _, s := range out {
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("server %s: JetStream is not current with a meta leader", s.Name())
			}
		}
		return nil
	})
	return out
}
