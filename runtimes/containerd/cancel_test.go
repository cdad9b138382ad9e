package containerd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/netns"

	"github.com/kybernetes/kybernetes/runtimes"
)

// TestCancelledCallsLeakNothing cancels CreateSandbox, StartContainer and
// RemoveSandbox at random points (as an agent does when a pod is deleted
// while it starts, or when it stops), then removes what is left with a
// fresh context, and checks that nothing is left behind.
func TestCancelledCallsLeakNothing(t *testing.T) {
	r, _ := newTestRuntime(t)
	before := countLeaks(t, r)
	cycles := 16
	if testing.Short() {
		cycles = 8
	}
	const workers = 4
	cycle := func(i int) error {
		bg := context.Background()
		cancelAfter := func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(bg)
			d := time.Duration(rand.IntN(300)) * time.Millisecond
			time.AfterFunc(d, cancel)
			return ctx, cancel
		}
		ctx, cancel := cancelAfter()
		defer cancel()
		sb, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "cancel", Name: fmt.Sprintf("p%d", i), UID: fmt.Sprintf("uid-%d", i)})
		if err != nil {
			if ctx.Err() == nil {
				return fmt.Errorf("create sandbox: %w", err)
			}
			return nil
		}
		if id, err := r.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: env.image, Args: []string{"sleep"}}); err == nil {
			r.StartContainer(ctx, id)
			sctx, scancel := cancelAfter()
			r.StopContainer(sctx, id, 0)
			scancel()
		}
		rctx, rcancel := cancelAfter()
		r.RemoveSandbox(rctx, sb.ID)
		rcancel()
		if err := r.RemoveSandbox(bg, sb.ID); err != nil {
			return fmt.Errorf("remove sandbox after a cancelled one: %w", err)
		}
		return nil
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < cycles; i += workers {
				if err := cycle(i); err != nil {
					errs <- fmt.Errorf("cycle %d: %w", i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if after := countLeaks(t, r); after != before {
		t.Fatalf("after %d cycles: before %+v after %+v", cycles, before, after)
	}
}

// TestRemoveSandboxCancelledReleasesNetwork: a RemoveSandbox whose context
// is cancelled before it can remove the containers still releases the
// network namespace, IP and NAT rules; the sandbox stays listed (not ready)
// until a second RemoveSandbox removes the rest.
func TestRemoveSandboxCancelledReleasesNetwork(t *testing.T) {
	r, _ := newTestRuntime(t)
	before := countLeaks(t, r)
	sb, err := r.CreateSandbox(context.Background(), &runtimes.SandboxConfig{Namespace: "cancel", Name: "early", UID: "uid-early"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r, sb, &runtimes.ContainerConfig{Name: "c", Args: []string{"sleep"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.RemoveSandbox(ctx, sb.ID); err == nil {
		t.Fatal("RemoveSandbox with a cancelled context succeeded, want an error naming the container it could not remove")
	}
	mid := countLeaks(t, r)
	if mid.NetNS != before.NetNS || mid.IPs != before.IPs || mid.Veths != before.Veths || mid.NATRules != before.NATRules {
		t.Errorf("after a cancelled RemoveSandbox: before %+v now %+v; want the network released", before, mid)
	}
	sbs, err := r.ListSandboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var listed *runtimes.Sandbox
	for _, s := range sbs {
		if s.ID == sb.ID {
			listed = s
		}
	}
	if listed == nil || listed.State != runtimes.SandboxNotReady {
		t.Errorf("ListSandboxes after a cancelled RemoveSandbox lists %+v, want %s not ready", listed, sb.ID)
	}
	if err := r.RemoveSandbox(context.Background(), sb.ID); err != nil {
		t.Fatalf("second RemoveSandbox: %v", err)
	}
	if after := countLeaks(t, r); after != before {
		t.Fatalf("before %+v after %+v", before, after)
	}
}

// TestCreateSandboxTwiceForOnePod: a second CreateSandbox for a pod UID
// that has a ready sandbox returns that sandbox and makes no second
// network namespace; one RemoveSandbox releases everything.
func TestCreateSandboxTwiceForOnePod(t *testing.T) {
	r, _ := newTestRuntime(t)
	ctx := context.Background()
	before := countLeaks(t, r)
	cfg := &runtimes.SandboxConfig{Namespace: "twice", Name: "p", UID: "uid-twice"}
	first, err := r.CreateSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.CreateSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.IP != first.IP || second.State != runtimes.SandboxReady {
		t.Errorf("second CreateSandbox = %+v, want the first one %+v", second, first)
	}
	if got := countLeaks(t, r); got.NetNS != before.NetNS+1 || got.Sandboxes != before.Sandboxes+1 {
		t.Errorf("after two CreateSandbox for one pod: before %+v now %+v, want one sandbox and namespace more", before, got)
	}
	if err := r.RemoveSandbox(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if after := countLeaks(t, r); after != before {
		t.Fatalf("before %+v after %+v", before, after)
	}
}

// TestUnfinishedCreateIsListedAndRemoved: the record a CreateSandbox writes
// before it sets up the network (what a process dying half-way leaves) is
// listed as not ready, and RemoveSandbox removes it with its namespace.
func TestUnfinishedCreateIsListedAndRemoved(t *testing.T) {
	r, _ := newTestRuntime(t)
	ctx := context.Background()
	before := countLeaks(t, r)
	ns, err := netns.NewNetNS(filepath.Join(r.cfg.StateDir, "netns"))
	if err != nil {
		t.Fatal(err)
	}
	sb := &sandboxRecord{ID: newID(), Namespace: "dead", Name: "p", UID: "uid-dead", NetNS: ns.GetPath(), CIDR: testCIDR, CreatedAt: time.Now(), Pending: true}
	if err := os.MkdirAll(r.sandboxDir(sb.ID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.writeSandbox(sb); err != nil {
		t.Fatal(err)
	}
	sbs, err := r.ListSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sbs, func(s *runtimes.Sandbox) bool { return s.ID == sb.ID })
	if i < 0 || sbs[i].State != runtimes.SandboxNotReady {
		t.Errorf("ListSandboxes = %+v, want %s listed not ready", sbs, sb.ID)
	}
	// Not handed out as the pod's sandbox either.
	got, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "dead", Name: "p", UID: "uid-dead"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == sb.ID {
		t.Errorf("CreateSandbox returned the unfinished sandbox %s", sb.ID)
	}
	for _, id := range []string{sb.ID, got.ID} {
		if err := r.RemoveSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if after := countLeaks(t, r); after != before {
		t.Fatalf("before %+v after %+v", before, after)
	}
}
