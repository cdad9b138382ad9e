package apiserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
)

// The agent's cluster DNS IP comes from the servers' --service-cidr: with
// 10.96.0.0/16, an agent without --cluster-dns uses 10.96.0.10; an explicit
// one outside the CIDR is refused naming both flags; "" stays "no DNS";
// and the configuration kept in the data dir serves a restart while no
// server answers.
func TestClusterDNSFromServiceCIDR(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), apiserver.Config{ServiceCIDR: "10.96.0.0/16"})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	nc := testutil.Connect(t, e.ns)
	for _, tc := range []struct {
		want, got string
		errHas    []string
	}{
		{want: node.ClusterDNSAuto, got: "10.96.0.10"},
		{want: "", got: ""},
		{want: "10.96.0.53", got: "10.96.0.53"},
		{want: "10.43.0.10", errHas: []string{"--cluster-dns 10.43.0.10", "--service-cidr", "10.96.0.0/16", "10.96.0.10"}},
		{want: "bogus", errHas: []string{"--cluster-dns", "IPv4"}},
		{want: "fd00::10", errHas: []string{"--cluster-dns", "IPv4"}},
		{want: strings.Repeat("1", 4096), errHas: []string{"--cluster-dns"}},
	} {
		t.Run(tc.want[:min(len(tc.want), 12)], func(t *testing.T) {
			got, err := node.ResolveClusterDNS(ctx, nc, "n1", dir, tc.want, logger(t))
			if tc.errHas != nil {
				if err == nil {
					t.Fatalf("accepted, as %q", got)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("error %q does not name %q", err, s)
					}
				}
				if len(err.Error()) > 1024 {
					t.Fatalf("error echoes the value: %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil || got != tc.got {
				t.Fatalf("got %q, %v; want %q", got, err, tc.got)
			}
		})
	}
	// No server answers (a NATS without an apiserver): the kept
	// configuration serves, and is still checked.
	lone := testutil.Connect(t, testutil.StartNATS(t))
	if got, err := node.ResolveClusterDNS(ctx, lone, "n1", dir, node.ClusterDNSAuto, logger(t)); err != nil || got != "10.96.0.10" {
		t.Fatalf("without a server, from the kept file: %q, %v; want 10.96.0.10", got, err)
	}
	if _, err := node.ResolveClusterDNS(ctx, lone, "n1", dir, "10.43.0.10", logger(t)); err == nil {
		t.Fatal("without a server, an explicit IP outside the kept CIDR was accepted")
	}
	// Without a kept file and a server, it waits until ctx ends.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := node.ResolveClusterDNS(short, lone, "n1", t.TempDir(), node.ClusterDNSAuto, logger(t)); err == nil {
		t.Fatal("without a server or a kept file: no error")
	}
}
