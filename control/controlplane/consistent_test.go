package controlplane_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// The store trusts a stream leader's last revision only while it heard
// from a quorum within a bound below the Raft election timeout this
// package sets, so that no other leader can have been elected meanwhile.
func TestLeaderContactBoundBelowElectionTimeout(t *testing.T) {
	if store.LeaderContactBound >= controlplane.ElectionTimeoutMin || store.LeaderContactBound <= time.Second {
		t.Fatalf("store.LeaderContactBound %v: want above the 1 s Raft heartbeat and below the election timeout %v", store.LeaderContactBound, controlplane.ElectionTimeoutMin)
	}
}

// TestReadYourWritesAcrossServers: on a 3-server cluster, an object created
// through server a is, at once, in a get and in a list answered by server b
// (KEP-2340's consistent reads from cache: b waits until its cache has
// applied the stream's last revision). Each client is pinned to one server,
// whose apiserver answers it (NATS prefers a local queue subscriber).
func TestReadYourWritesAcrossServers(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	ca, cb := adminClient(t, ms[0].cp), adminClient(t, ms[1].cp)
	const n = 200
	var (
		mu     sync.Mutex
		misses []string
	)
	miss := func(format string, args ...any) {
		mu.Lock()
		misses = append(misses, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for i := range n {
		name := fmt.Sprintf("ryw-%d", i)
		manifest := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: default, labels: {ryw: %q}}\ndata: {i: %q}\n", name, name, name)
		if _, err := ca.Apply(ctx, []byte(manifest)); err != nil {
			t.Fatalf("create %s through %s: %v", name, ms[0].name, err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := retried(func() error {
				_, err := cb.Get(ctx, "ConfigMap", "default", name)
				return err
			})
			if err != nil {
				miss("get %s through %s: %v", name, ms[1].name, err)
			}
		})
		wg.Go(func() {
			var objs []api.Object
			_, err := retried(func() error {
				var err error
				objs, _, err = cb.List(ctx, api.ListRequest{Kind: "ConfigMap", Namespace: "default", LabelSelector: "ryw=" + name})
				return err
			})
			if err != nil || len(objs) != 1 {
				miss("list ryw=%s through %s: %d items, %v", name, ms[1].name, len(objs), err)
			}
		})
		wg.Wait()
	}
	if len(misses) > 0 {
		t.Fatalf("%d of %d reads through %s missed a write acknowledged through %s; first: %s",
			len(misses), 2*n, ms[1].name, ms[0].name, misses[0])
	}
}

// retried runs read again after a 504 Timeout (the client retry policy:
// the server could not prove its cache current in time; a stale answer is
// never retried, it is a success or a NotFound), up to 5 times.
func retried(read func() error) (int, error) {
	for n := 0; ; n++ {
		err := read()
		if api.ReasonOf(err) != api.ReasonTimeout || n == 4 {
			return n, err
		}
	}
}

// TestCutOffServerRefusesStaleReads: a server that cannot reach the objects
// stream's leader (the two others are gone) answers a get or a list with a
// 504 Timeout Status within the bound, never from its cache, which may be
// stale; resourceVersion "0" still reads that cache, as asked.
func TestCutOffServerRefusesStaleReads(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	ca := adminClient(t, ms[0].cp)
	if _, err := ca.Apply(ctx, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before, namespace: default}\n")); err != nil {
		t.Fatalf("create through %s: %v", ms[0].name, err)
	}
	cb := adminClient(t, ms[1].cp)
	if _, err := cb.Get(ctx, "ConfigMap", "default", "before"); err != nil {
		t.Fatalf("get through %s: %v", ms[1].name, err)
	}
	var wg sync.WaitGroup
	for _, m := range []*member{ms[0], ms[2]} {
		wg.Go(func() { stopMember(m) })
	}
	wg.Wait()
	isTimeout := func(err error) bool {
		var st *api.Status
		return errors.As(err, &st) && st.Code == 504 && st.Reason == api.ReasonTimeout
	}
	// Had b led the stream, its lease lasts store.LeaderContactBound after
	// it last heard from the others, and a read meanwhile is still a
	// leader's (and current: no write can be acknowledged without them).
	// Until b's first 504, every read must hold the object.
	testutil.Eventually(t, 15*time.Second, func() error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := cb.Get(rctx, "ConfigMap", "default", "before")
		switch {
		case isTimeout(err):
			return nil
		case err != nil:
			t.Fatalf("get through the cut-off %s: %v; want the object or a 504 Timeout Status", ms[1].name, err)
		}
		return errors.New("still answered by a leader in its lease")
	})
	for _, tc := range []struct {
		name string
		read func(context.Context) error
	}{
		{"get", func(ctx context.Context) error {
			_, err := cb.Get(ctx, "ConfigMap", "default", "before")
			return err
		}},
		{"list", func(ctx context.Context) error {
			_, _, err := cb.List(ctx, api.ListRequest{Kind: "ConfigMap", Namespace: "default"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := tc.read(rctx); !isTimeout(err) {
				t.Fatalf("%s through the cut-off %s: %v; want a 504 Timeout Status", tc.name, ms[1].name, err)
			}
		})
	}
	obj, err := cb.GetWith(ctx, api.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: "before", ResourceVersion: api.ResourceVersionAny})
	if err != nil || obj.GetObjectMeta().Name != "before" {
		t.Fatalf("get at resourceVersion 0 through the cut-off %s: %v, %v; want the cached object", ms[1].name, obj, err)
	}
}
