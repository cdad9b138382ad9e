package framework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var podKind = api.KindOf(&api.Pod{})

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), js, store.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newPod(ns, name string, lbl map[string]string) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: ns, Labels: lbl}}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	api.Default(p)
	return p
}

// recorder is a Handler that records what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) handler() Handler {
	rec := func(s string) {
		r.mu.Lock()
		r.events = append(r.events, s)
		r.mu.Unlock()
	}
	return Handler{
		OnAdd: func(o api.Object) { rec("add " + KeyOf(o).String()) },
		OnUpdate: func(old, o api.Object) {
			rec("update " + KeyOf(o).String() + " from " + old.GetObjectMeta().ResourceVersion)
		},
		OnDelete: func(o api.Object) { rec("delete " + KeyOf(o).String()) },
	}
}

func (r *recorder) has(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.events, s) {
		return nil
	}
	return fmt.Errorf("no %q in %q", s, r.events)
}

func names(objs []api.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, KeyOf(o).String())
	}
	slices.Sort(out)
	return out
}

func TestInformer(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	web := map[string]string{"app": "web"}
	for _, p := range []*api.Pod{newPod("a", "w1", web), newPod("a", "db", nil), newPod("b", "w2", web)} {
		if err := st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mgr := NewManager(st, quiet)
	inf := mgr.Informer(podKind)
	if mgr.Informer(podKind) != inf {
		t.Fatal("two informers for one kind")
	}
	var rec recorder
	inf.AddHandler(rec.handler())
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()
	if !mgr.WaitForSync(ctx) {
		t.Fatal("not synced")
	}
	l := inf.Lister()

	t.Run("initial state", func(t *testing.T) {
		if got := names(l.List("", nil)); !slices.Equal(got, []string{"a/db", "a/w1", "b/w2"}) {
			t.Fatalf("List all = %v", got)
		}
		if got := names(l.List("a", nil)); !slices.Equal(got, []string{"a/db", "a/w1"}) {
			t.Fatalf("List a = %v", got)
		}
		if got := names(l.List("", labels.SelectorFromSet(web))); !slices.Equal(got, []string{"a/w1", "b/w2"}) {
			t.Fatalf("List app=web = %v", got)
		}
		if got := names(l.List("b", labels.SelectorFromSet(web))); !slices.Equal(got, []string{"b/w2"}) {
			t.Fatalf("List b app=web = %v", got)
		}
		if _, ok := l.Get("a", "w1"); !ok {
			t.Fatal("Get a/w1: missing")
		}
		if _, ok := l.Get("b", "w1"); ok {
			t.Fatal("Get b/w1: found in the wrong namespace")
		}
		if n := l.Count("a"); n != 2 {
			t.Fatalf("Count a = %d", n)
		}
		for _, k := range []string{"add a/w1", "add a/db", "add b/w2"} {
			if err := rec.has(k); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("changes", func(t *testing.T) {
		obj, _ := l.Get("a", "w1")
		p := api.DeepCopy(obj.(*api.Pod))
		oldRV := p.ResourceVersion
		p.Labels = map[string]string{"app": "web", "tier": "front"}
		if err := st.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Delete(ctx, podKind, "a", "db", ""); err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, newPod("c", "new", nil)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, func() error {
			return errors.Join(rec.has("update a/w1 from "+oldRV), rec.has("delete a/db"), rec.has("add c/new"))
		})
		got, _ := l.Get("a", "w1")
		if got.GetObjectMeta().ResourceVersion != p.ResourceVersion || got.GetObjectMeta().Labels["tier"] != "front" {
			t.Fatalf("cached a/w1 at %s %v, want %s with tier", got.GetObjectMeta().ResourceVersion, got.GetObjectMeta().Labels, p.ResourceVersion)
		}
		if _, ok := l.Get("a", "db"); ok {
			t.Fatal("deleted pod still cached")
		}
		if inf.Revision() < revision(p) {
			t.Fatalf("Revision %d behind the update at %s", inf.Revision(), p.ResourceVersion)
		}
	})

	t.Run("late handler gets the cache replayed", func(t *testing.T) {
		var late recorder
		inf.AddHandler(late.handler())
		for _, k := range []string{"add a/w1", "add b/w2", "add c/new"} {
			if err := late.has(k); err != nil {
				t.Fatal(err)
			}
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// flakyWatcher wraps a store: its first watch ends after a few events (a
// lost connection), its second fails to start; it records every watch's
// starting revision.
type flakyWatcher struct {
	st *store.Store
	mu sync.Mutex
	// froms are the revisions watches were asked to start from.
	froms []uint64
	cut   int // events the first watch passes on before it ends
}

func (f *flakyWatcher) Watch(ctx context.Context, kind *api.Kind, from uint64) (<-chan store.Event, error) {
	f.mu.Lock()
	f.froms = append(f.froms, from)
	n := len(f.froms)
	f.mu.Unlock()
	if n == 2 {
		return nil, api.NewUnavailable("jetstream unavailable")
	}
	wctx, cancel := context.WithCancel(ctx)
	in, err := f.st.Watch(wctx, kind, from)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		defer cancel()
		passed := 0
		for ev := range in {
			if n == 1 && passed == f.cut {
				return // the connection is lost
			}
			select {
			case out <- ev:
				passed++
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// TestInformerResumes: a watch that ends, and one that cannot start, are
// followed by a watch from the last revision applied (not from 0, no
// relist), and the cache ends exactly like the store.
func TestInformerResumes(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var revs []uint64
	for i := range 4 {
		p := newPod("a", fmt.Sprint("p", i), nil)
		if err := st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		revs = append(revs, revision(p))
	}
	fw := &flakyWatcher{st: st, cut: 2}
	inf := NewInformer(fw, podKind, quiet)
	inf.backoff.Initial, inf.backoff.Max = time.Millisecond, time.Millisecond
	done := make(chan error, 1)
	go func() { done <- inf.Run(ctx) }()
	select {
	case <-inf.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("not synced after the watch was resumed")
	}
	fw.mu.Lock()
	froms := slices.Clone(fw.froms)
	fw.mu.Unlock()
	// First from 0; cut after two pods; a failed start from the second
	// pod's revision; then from there again.
	if want := []uint64{0, revs[1], revs[1]}; !slices.Equal(froms, want) {
		t.Fatalf("watches started from %v, want %v", froms, want)
	}
	if got := names(inf.Lister().List("", nil)); !slices.Equal(got, []string{"a/p0", "a/p1", "a/p2", "a/p3"}) {
		t.Fatalf("cache after resume: %v", got)
	}
	// Live changes keep flowing on the resumed watch.
	if _, err := st.Delete(ctx, podKind, "a", "p0", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, ok := inf.Lister().Get("a", "p0"); ok {
			return errors.New("deleted pod still cached")
		}
		return nil
	})
	cancel()
	<-done
}

// TestControllerWaitsForSync: the first Reconcile already sees the whole
// initial state (workers start after the watched informers synced), and
// every object's key is reconciled once, merged however often it was seen.
func TestControllerWaitsForSync(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 50
	for i := range n {
		if err := st.Create(ctx, newPod("a", fmt.Sprint("p", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	mgr := NewManager(st, quiet)
	inf := mgr.Informer(podKind)
	var (
		mu        sync.Mutex
		firstSeen = -1
		keys      = map[Key]int{}
	)
	c := NewController("sync", ReconcileFunc(func(ctx context.Context, key Key) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if firstSeen < 0 {
			firstSeen = inf.Lister().Count("")
		}
		keys[key]++
		return Result{}, nil
	}), Options{Workers: 4, Logger: quiet})
	c.Watch(inf, nil)
	mgr.Add("sync", c)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(keys) != n {
			return fmt.Errorf("%d keys reconciled, want %d", len(keys), n)
		}
		return nil
	})
	mu.Lock()
	if firstSeen != n {
		t.Errorf("first Reconcile saw %d cached pods, want %d: workers started before the cache synced", firstSeen, n)
	}
	for k, times := range keys {
		if times != 1 {
			t.Errorf("key %v reconciled %d times with no change", k, times)
		}
	}
	mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
