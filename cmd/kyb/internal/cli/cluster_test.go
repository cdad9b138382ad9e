package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestPrintClusterStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &api.ClusterStatus{
		MetaLeader: "s1",
		Servers: []api.ServerStatus{
			{Name: "s1", Up: true, Current: true, Version: "v1", ClientURL: "tls://a:4222", Started: now.Add(-2 * time.Hour)},
			{Name: "s2", Up: true, Current: false, Version: "v1", ClientURL: "tls://b:4222", Started: now.Add(-90 * time.Second)},
			{Name: "s3"},
		},
		Streams: []api.StreamStatus{{Name: "KV_kyb-objects", Replicas: 3, Leader: "s1", Messages: 7,
			Peers: []api.StreamReplica{{Name: "s2", Current: true, Lag: 4}, {Name: "s3", Offline: true}}}},
		Leases: []api.LeaseStatus{{Name: "scheduler", Holder: "s1-abc"}, {Name: "controller-manager"}},
	}
	var b bytes.Buffer
	printClusterStatus(&b, st, false, now)
	out := b.String()
	for _, want := range []string{
		"s1     Up           *", "s2     Up,Lagging", "s3     Down", "2h", "1m",
		"KV_kyb-objects   3", "s2(4),s3(offline)", "scheduler            s1-abc", "controller-manager   -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printClusterStatus(&b, st, true, now)
	if strings.Contains(b.String(), "STREAM") || !strings.Contains(b.String(), "s3") {
		t.Errorf("servers only:\n%s", b.String())
	}
}
