package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// acquire takes l once (acquire and claim, as Hold does) and starts its
// fence; it fails the test when another process holds it.
func acquire(t testing.TB, l *Lease) {
	t.Helper()
	ctx := context.Background()
	rev, ok, err := l.Acquire(ctx)
	if !ok || err != nil {
		t.Fatalf("%s: Acquire = %v, %v", l.identity, ok, err)
	}
	epoch, err := l.claim(ctx, rev)
	if err != nil {
		t.Fatalf("%s: claim: %v", l.identity, err)
	}
	l.fence.set(epoch)
}

// Every write through a fenced Store fails with ErrLeaseLost once another
// process took the lease, and changes nothing; the successor's writes land.
func TestFencedWritesFailAfterTakeover(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	a, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	b, _ := st.Lease("ctl", "b", time.Second, 200*time.Millisecond, nil)
	fa, fb := st.WithFence(a.Fence()), st.WithFence(b.Fence())

	// Not holding: refused before anything is sent.
	if err := fa.Create(ctx, newPod("default", "early", nil)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("create before acquiring: err = %v; want ErrLeaseLost", err)
	}
	acquire(t, a)
	upd, del := newPod("default", "upd", nil), newPod("default", "del", nil)
	for _, p := range []*api.Pod{upd, del} {
		if err := fa.Create(ctx, p); err != nil {
			t.Fatalf("holder's create: %v", err)
		}
	}
	// b takes over behind a's back (a's lease is revoked and b claims it;
	// a still believes it holds).
	if err := a.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.kv.Purge(ctx, a.key); err != nil { // let b in at once
		t.Fatal(err)
	}
	acquire(t, b)
	if _, ok := a.Fence().Epoch(); !ok {
		t.Fatal("a's fence dropped before any write found the new epoch")
	}
	upd.Spec.NodeName = "n1"
	for name, write := range map[string]func() error{
		"create":    func() error { return fa.Create(ctx, newPod("default", "late", nil)) },
		"update":    func() error { return fa.Update(ctx, api.DeepCopy(upd)) },
		"delete":    func() error { _, err := fa.Delete(ctx, podKind, "default", "del", ""); return err },
		"updateAll": func() error { return fa.UpdateAll(ctx, []api.Object{api.DeepCopy(upd)})[0] },
	} {
		t.Run(name, func(t *testing.T) {
			if err := write(); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("deposed holder's %s: err = %v; want ErrLeaseLost", name, err)
			}
		})
	}
	select {
	case <-a.Fence().Lost():
	default:
		t.Fatal("a's fence not marked lost after a refused write")
	}
	// Nothing changed.
	if _, err := st.Get(ctx, podKind, "default", "late"); !api.IsNotFound(err) {
		t.Fatalf("deposed create landed: %v", err)
	}
	got, err := st.Get(ctx, podKind, "default", "upd")
	if err != nil || got.(*api.Pod).Spec.NodeName != "" {
		t.Fatalf("deposed update landed: %v %v", got, err)
	}
	if _, err := st.Get(ctx, podKind, "default", "del"); err != nil {
		t.Fatalf("deposed delete landed: %v", err)
	}
	// The successor writes; a conflict through a fence is still a Conflict.
	if err := fb.Update(ctx, api.DeepCopy(upd)); err != nil {
		t.Fatalf("successor's update: %v", err)
	}
	if err := fb.Update(ctx, api.DeepCopy(upd)); !api.IsConflict(err) {
		t.Fatalf("successor's stale update: err = %v; want Conflict", err)
	}
	if err := fb.Create(ctx, newPod("default", "del", nil)); !api.IsAlreadyExists(err) {
		t.Fatalf("successor's create of an existing name: err = %v; want AlreadyExists", err)
	}
	if _, err := fb.Delete(ctx, podKind, "default", "del", ""); err != nil {
		t.Fatalf("successor's delete: %v", err)
	}
	if err := fb.Create(ctx, newPod("default", "del", nil)); err != nil {
		t.Fatalf("successor's create over a delete marker: %v", err)
	}
}

// Writes already in flight when the lease changes hands: every write of the
// deposed holder that landed was committed before the successor's claim,
// and every one after it failed; none is lost or half-applied.
func TestFencedWritesInFlightAtTakeover(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	a, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	b, _ := st.Lease("ctl", "b", time.Second, 200*time.Millisecond, nil)
	fa := st.WithFence(a.Fence())
	acquire(t, a)
	const writers, each = 8, 40
	var mu sync.Mutex
	landed := map[string]uint64{}
	var refused int
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				p := newPod("default", fmt.Sprintf("w%d-%d", w, i), nil)
				err := fa.Create(ctx, p)
				mu.Lock()
				switch {
				case err == nil:
					landed[p.Name] = rvOf(t, p)
				case errors.Is(err, ErrLeaseLost):
					refused++
				default:
					t.Errorf("create %s: %v", p.Name, err)
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	time.Sleep(5 * time.Millisecond) // let some land first
	if err := a.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.kv.Purge(ctx, a.key); err != nil {
		t.Fatal(err)
	}
	acquire(t, b)
	epoch, _ := b.Fence().Epoch()
	wg.Wait()
	if refused == 0 {
		t.Log("every write landed before the takeover (the machine was fast); the bound below still holds")
	}
	for name, rev := range landed {
		if rev > epoch {
			t.Errorf("%s landed at revision %d, after the successor's epoch %d", name, rev, epoch)
		}
	}
	items, _, err := st.List(ctx, podKind, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(landed) {
		t.Fatalf("%d pods stored, %d creates acknowledged", len(items), len(landed))
	}
	t.Logf("%d writes landed before the takeover, %d refused after it", len(landed), refused)
}

// A renewal does not move the epoch: writes keep landing across renewals.
func TestFencedWritesSurviveRenewals(t *testing.T) {
	st := openLeases(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, _ := st.Lease("ctl", "a", time.Second, 50*time.Millisecond, nil)
	fs := st.WithFence(l.Fence())
	errs := make(chan error, 1)
	go func() {
		errs <- l.Hold(ctx, func(ctx context.Context) error {
			deadline := time.Now().Add(300 * time.Millisecond) // about 6 renewals
			for i := 0; time.Now().Before(deadline); i++ {
				if err := fs.Create(ctx, newPod("default", fmt.Sprintf("p%d", i), nil)); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	if err := <-errs; err != nil {
		t.Fatalf("writes across renewals: %v", err)
	}
}

// A stream without atomic publish (a bucket made by an older kyb) gets it
// when the store opens it.
func TestOpenAllowsAtomicPublish(t *testing.T) {
	srv := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultBucket, History: 1}); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, js, Config{Fence: FenceBatch})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	acquire(t, l)
	if err := st.WithFence(l.Fence()).Create(ctx, newPod("default", "p", nil)); err != nil {
		t.Fatalf("fenced create on an upgraded bucket: %v", err)
	}
}

// UpdateAll through a fence writes a group in one batch; a stale object in
// the group fails alone (Conflict), the others land with their revisions.
func TestFencedUpdateAllGroup(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	l, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	acquire(t, l)
	fs := st.WithFence(l.Fence())
	var objs []api.Object
	for i := range 20 {
		p := newPod("default", fmt.Sprintf("g%d", i), nil)
		if err := st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, p)
	}
	for _, stale := range []bool{false, true} {
		if stale { // someone else changes g7 first
			other := api.DeepCopy(objs[7]).(*api.Pod)
			other.Labels = map[string]string{"x": "y"}
			if err := st.Update(ctx, other); err != nil {
				t.Fatal(err)
			}
		}
		for _, o := range objs {
			o.(*api.Pod).Status.Message = fmt.Sprintf("stale=%v", stale)
		}
		errs := fs.UpdateAll(ctx, objs)
		for i, err := range errs {
			switch {
			case stale && i == 7:
				if !api.IsConflict(err) {
					t.Fatalf("stale g7: err = %v; want Conflict", err)
				}
				continue
			case err != nil:
				t.Fatalf("g%d (stale=%v): %v", i, stale, err)
			}
			got, err := st.Get(ctx, podKind, "default", objs[i].GetObjectMeta().Name)
			if err != nil || got.GetObjectMeta().ResourceVersion != objs[i].GetObjectMeta().ResourceVersion ||
				got.(*api.Pod).Status.Message != fmt.Sprintf("stale=%v", stale) {
				t.Fatalf("g%d stored %v (rv %s), UpdateAll said rv %s", i, err, got.GetObjectMeta().ResourceVersion, objs[i].GetObjectMeta().ResourceVersion)
			}
		}
	}
}

// Concurrent writes through one fenced Store are committed together; a
// stale one among them fails alone (Conflict), a create of a taken name
// alone (AlreadyExists), and the others land.
func TestFencedConcurrentWritesGroup(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	l, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	acquire(t, l)
	fs := st.WithFence(l.Fence())
	stale := newPod("default", "stale", nil)
	if err := st.Create(ctx, stale); err != nil {
		t.Fatal(err)
	}
	staleCopy := api.DeepCopy(stale)
	stale.Labels = map[string]string{"moved": "on"}
	if err := st.Update(ctx, stale); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			wg.Go(func() {
				switch i {
				case 0:
					errs[i] = fs.Update(ctx, api.DeepCopy(staleCopy))
				case 1:
					errs[i] = fs.Create(ctx, newPod("default", "stale", nil))
				default:
					errs[i] = fs.Create(ctx, newPod("default", fmt.Sprintf("r%d-%d", round, i), nil))
				}
			})
		}
		wg.Wait()
		if !api.IsConflict(errs[0]) {
			t.Fatalf("stale update in a group: %v; want Conflict", errs[0])
		}
		if !api.IsAlreadyExists(errs[1]) {
			t.Fatalf("create of a taken name in a group: %v; want AlreadyExists", errs[1])
		}
		for i, err := range errs[2:] {
			if err != nil {
				t.Fatalf("write %d: %v", i+2, err)
			}
		}
	}
	items, _, err := st.List(ctx, podKind, ListOptions{})
	if err != nil || len(items) != 1+5*38 {
		t.Fatalf("%d pods stored (%v); want %d", len(items), err, 1+5*38)
	}
}

// On a JetStream that is not clustered (embedded in its only control
// plane) FenceAuto checks the lease locally: no batch, and a write by a
// process that does not hold the lease still fails.
func TestFenceAutoIsLocalOnOneServer(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	l, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	fs := st.WithFence(l.Fence())
	if fs.BatchFenced() {
		t.Fatal("auto fencing on a server without a cluster uses batches")
	}
	if err := fs.Create(ctx, newPod("default", "early", nil)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("create without the lease: %v; want ErrLeaseLost", err)
	}
	if errs := fs.UpdateAll(ctx, []api.Object{newPod("default", "x", nil)}); !errors.Is(errs[0], ErrLeaseLost) {
		t.Fatalf("UpdateAll without the lease: %v; want ErrLeaseLost", errs[0])
	}
	acquire(t, l)
	if err := fs.Create(ctx, newPod("default", "held", nil)); err != nil {
		t.Fatalf("create with the lease: %v", err)
	}
	l.fence.drop()
	if _, err := fs.Delete(ctx, podKind, "default", "held", ""); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("delete after the lease ended: %v; want ErrLeaseLost", err)
	}
}

// BenchmarkFencedWrite measures one write through a fenced Store (an atomic
// batch: epoch check + compare-and-set) against the same write unfenced, in
// one run, serial and with 16 writers, on a durable server in both sync
// modes.
func BenchmarkFencedWrite(b *testing.B) {
	for _, mode := range []struct {
		name     string
		always   bool
		interval time.Duration
	}{{"always", true, 0}, {"interval1s", false, time.Second}} {
		b.Run(mode.name, func(b *testing.B) {
			st := openStore(b, startDurableNATS(b, mode.always, mode.interval))
			ctx := context.Background()
			l, _ := st.Lease("bench", "a", 10*time.Second, time.Second, nil)
			acquire(b, l)
			batch, local := st.WithFence(l.Fence()), st.WithFence(l.Fence())
			batch.batchFence, local.batchFence = true, false
			stores := []struct {
				name string
				s    *Store
			}{{"unfenced", st}, {"local", local}, {"batch", batch}}
			var n atomic.Int64
			for _, sc := range stores {
				b.Run("update/"+sc.name, func(b *testing.B) {
					p := benchPod("default", fmt.Sprintf("u-%d", n.Add(1)))
					if err := sc.s.Create(ctx, p); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						p.Status.Message = fmt.Sprintf("tick %d", i)
						if err := sc.s.Update(ctx, p); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			for _, sc := range stores {
				b.Run("updateAll100/"+sc.name, func(b *testing.B) {
					objs := make([]api.Object, 100)
					for i := range objs {
						objs[i] = benchPod("all", fmt.Sprintf("a-%d", n.Add(1)))
						if err := sc.s.Create(ctx, objs[i]); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						for _, o := range objs {
							o.(*api.Pod).Status.Message = fmt.Sprintf("tick %d", i)
						}
						for _, err := range sc.s.UpdateAll(ctx, objs) {
							if err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			}
			for _, sc := range stores {
				b.Run("create16/"+sc.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := sc.s.Create(ctx, benchPod("par", fmt.Sprintf("p-%d", n.Add(1)))); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}
