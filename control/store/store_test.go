package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	podKind  = api.KindOf(&api.Pod{})
	nodeKind = api.KindOf(&api.Node{})
)

func openStore(t testing.TB, nc *nats.Conn) *Store {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	s, err := Open(context.Background(), js, Config{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	srv := testutil.StartNATS(t)
	return openStore(t, testutil.Connect(t, srv))
}

func newPod(ns, name string, lbls map[string]string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
}

func rvOf(t testing.TB, o api.Object) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(o.GetObjectMeta().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", o.GetObjectMeta().ResourceVersion, err)
	}
	return n
}

func TestKeyEscaping(t *testing.T) {
	valid := regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)
	for _, name := range []string{"web", "web.v1", "a.b.c", "x_y", "x=y", "_", "UPPER.lower-9", "ünï", "a/b"} {
		t.Run(name, func(t *testing.T) {
			tok := escapeToken(name)
			if !valid.MatchString(tok) {
				t.Fatalf("escapeToken(%q) = %q: not a valid key token", name, tok)
			}
			back, ok := unescapeToken(tok)
			if !ok || back != name {
				t.Fatalf("unescapeToken(%q) = %q, %v; want %q", tok, back, ok, name)
			}
			k, ns, n, ok := splitKey(objectKey(podKind, "ns.1", name))
			if !ok || k != "pod" || ns != "ns.1" || n != name {
				t.Fatalf("splitKey round trip = %q %q %q %v", k, ns, n, ok)
			}
		})
	}
	if escapeToken("_") == api.ClusterScope {
		t.Fatalf("namespace %q collides with the cluster scope token", "_")
	}
	for _, bad := range []string{"a=", "a=G1", "=4"} {
		if _, ok := unescapeToken(bad); ok {
			t.Errorf("unescapeToken(%q) accepted a malformed token", bad)
		}
	}
}

func TestCRUD(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()

	p := newPod("default", "web", map[string]string{"app": "web"})
	before := time.Now().UTC().Add(-time.Second)
	if err := s.Create(ctx, p); err != nil {
		t.Fatalf("create: %v", err)
	}
	if p.UID == "" || p.Generation != 1 || p.ResourceVersion == "" {
		t.Fatalf("create did not set uid/generation/resourceVersion: %+v", p.ObjectMeta)
	}
	if p.CreationTimestamp.Before(before) || p.CreationTimestamp.Nanosecond() != 0 || p.CreationTimestamp.Location() != time.UTC {
		t.Fatalf("creationTimestamp = %v; want now, UTC, whole seconds", p.CreationTimestamp)
	}
	if p.Kind != "Pod" || p.APIVersion != "v1" {
		t.Fatalf("type meta = %+v; want Pod v1", p.TypeMeta)
	}

	t.Run("create twice is AlreadyExists", func(t *testing.T) {
		err := s.Create(ctx, newPod("default", "web", nil))
		if !api.IsAlreadyExists(err) {
			t.Fatalf("err = %v; want AlreadyExists", err)
		}
	})
	t.Run("same name in another namespace is fine", func(t *testing.T) {
		if err := s.Create(ctx, newPod("other", "web", nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("get returns the stored object", func(t *testing.T) {
		o, err := s.Get(ctx, podKind, "default", "web")
		if err != nil {
			t.Fatal(err)
		}
		g := o.(*api.Pod)
		if g.UID != p.UID || g.ResourceVersion != p.ResourceVersion || g.Labels["app"] != "web" || g.Spec.Containers[0].Image != "registry.example/app:1" {
			t.Fatalf("got %+v; want %+v", g.ObjectMeta, p.ObjectMeta)
		}
	})
	t.Run("get missing is NotFound", func(t *testing.T) {
		if _, err := s.Get(ctx, podKind, "default", "nope"); !api.IsNotFound(err) {
			t.Fatalf("err = %v; want NotFound", err)
		}
	})

	rv1 := p.ResourceVersion
	t.Run("metadata-only update keeps generation", func(t *testing.T) {
		u := *p
		u.Labels = map[string]string{"app": "web", "tier": "front"}
		u.UID = "forged"
		u.CreationTimestamp = time.Unix(0, 0)
		if err := s.Update(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if u.Generation != 1 || u.UID != p.UID || !u.CreationTimestamp.Equal(p.CreationTimestamp) {
			t.Fatalf("update changed generation/uid/creationTimestamp: %+v", u.ObjectMeta)
		}
		if rvOf(t, &u) <= rvOf(t, p) {
			t.Fatalf("resourceVersion %s did not grow from %s", u.ResourceVersion, p.ResourceVersion)
		}
		*p = u
	})
	for _, tc := range []struct {
		name   string
		change func(*api.Pod)
		gen    int64
	}{
		{"status update keeps generation", func(u *api.Pod) { u.Status.Phase = api.PodRunning }, 1},
		{"spec update bumps generation", func(u *api.Pod) { u.Spec.NodeName = "node-1" }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := *p
			tc.change(&u)
			if err := s.Update(ctx, &u); err != nil {
				t.Fatal(err)
			}
			if u.Generation != tc.gen {
				t.Fatalf("generation = %d; want %d", u.Generation, tc.gen)
			}
			*p = u
		})
	}
	t.Run("stale resourceVersion is Conflict", func(t *testing.T) {
		u := *p
		u.ResourceVersion = rv1
		u.Labels = map[string]string{"stale": "yes"}
		err := s.Update(ctx, &u)
		if !api.IsConflict(err) {
			t.Fatalf("err = %v; want Conflict", err)
		}
		if u.ResourceVersion != rv1 || u.Labels["stale"] != "yes" {
			t.Fatalf("failed update modified the object: %+v", u.ObjectMeta)
		}
	})
	t.Run("bad resourceVersion is BadRequest", func(t *testing.T) {
		for _, rv := range []string{"", "abc", "0"} {
			u := *p
			u.ResourceVersion = rv
			if err := s.Update(ctx, &u); api.ReasonOf(err) != api.ReasonBadRequest {
				t.Errorf("rv %q: err = %v; want BadRequest", rv, err)
			}
		}
	})
	t.Run("update missing is NotFound", func(t *testing.T) {
		u := newPod("default", "ghost", nil)
		u.ResourceVersion = "1"
		if err := s.Update(ctx, u); !api.IsNotFound(err) {
			t.Fatalf("err = %v; want NotFound", err)
		}
	})
	t.Run("delete with stale precondition is Conflict", func(t *testing.T) {
		if _, err := s.Delete(ctx, podKind, "default", "web", rv1); !api.IsConflict(err) {
			t.Fatalf("err = %v; want Conflict", err)
		}
	})
	t.Run("delete returns the last value", func(t *testing.T) {
		o, err := s.Delete(ctx, podKind, "default", "web", p.ResourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		d := o.(*api.Pod)
		if d.UID != p.UID || d.Spec.NodeName != "node-1" || rvOf(t, d) <= rvOf(t, p) {
			t.Fatalf("deleted object = %+v", d.ObjectMeta)
		}
		if _, err := s.Get(ctx, podKind, "default", "web"); !api.IsNotFound(err) {
			t.Fatalf("get after delete: err = %v; want NotFound", err)
		}
		if _, err := s.Delete(ctx, podKind, "default", "web", ""); !api.IsNotFound(err) {
			t.Fatalf("second delete: err = %v; want NotFound", err)
		}
	})
	t.Run("create after delete gets a new uid", func(t *testing.T) {
		q := newPod("default", "web", nil)
		if err := s.Create(ctx, q); err != nil {
			t.Fatal(err)
		}
		if q.UID == p.UID || q.Generation != 1 {
			t.Fatalf("recreated pod: %+v", q.ObjectMeta)
		}
	})
	t.Run("too large is RequestEntityTooLarge", func(t *testing.T) {
		big := newPod("default", "big", nil)
		big.Annotations = map[string]string{"blob": strings.Repeat("x", MaxObjectSize)}
		if err := s.Create(ctx, big); api.ReasonOf(err) != api.ReasonTooLarge {
			t.Fatalf("err = %v; want %s", err, api.ReasonTooLarge)
		}
	})
	t.Run("bad input is BadRequest", func(t *testing.T) {
		if err := s.Create(ctx, newPod("default", "", nil)); api.ReasonOf(err) != api.ReasonBadRequest {
			t.Errorf("empty name: err = %v", err)
		}
		if err := s.Create(ctx, newPod("", "x", nil)); api.ReasonOf(err) != api.ReasonBadRequest {
			t.Errorf("empty namespace: err = %v", err)
		}
		if _, err := s.Get(ctx, nil, "", "x"); api.ReasonOf(err) != api.ReasonBadRequest {
			t.Errorf("nil kind: err = %v", err)
		}
	})
}

func TestNamesWithDots(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	names := []string{"node.example.com", "a.b", "ab"}
	for _, n := range names {
		if err := s.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: n, Namespace: "ignored"}}); err != nil {
			t.Fatalf("create node %s: %v", n, err)
		}
	}
	for _, n := range names {
		o, err := s.Get(ctx, nodeKind, "", n)
		if err != nil {
			t.Fatalf("get node %s: %v", n, err)
		}
		if got := o.GetObjectMeta(); got.Name != n || got.Namespace != "" {
			t.Fatalf("node %s came back as %q/%q", n, got.Namespace, got.Name)
		}
	}
	list, _, err := s.List(ctx, nodeKind, ListOptions{Fields: fields.OneTermEqualSelector("metadata.name", "a.b")})
	if err != nil || len(list) != 1 || list[0].GetObjectMeta().Name != "a.b" {
		t.Fatalf("list by name a.b = %v, %v", list, err)
	}
	if _, err := s.Delete(ctx, nodeKind, "", "node.example.com", ""); err != nil {
		t.Fatal(err)
	}
	list, _, err = s.List(ctx, nodeKind, ListOptions{})
	if err != nil || len(list) != 2 {
		t.Fatalf("list after delete = %d objects, %v; want 2", len(list), err)
	}
}

func TestList(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	type spec struct {
		ns, name, node string
		phase          api.PodPhase
		lbls           map[string]string
	}
	for _, p := range []spec{
		{"default", "web-1", "n1", api.PodRunning, map[string]string{"app": "web", "tier": "front"}},
		{"default", "web-2", "n2", api.PodPending, map[string]string{"app": "web"}},
		{"default", "db-1", "n1", api.PodRunning, map[string]string{"app": "db"}},
		{"prod", "web-1", "", api.PodPending, map[string]string{"app": "web"}},
		{"prod", "api.v2", "n2", api.PodFailed, nil},
	} {
		pod := newPod(p.ns, p.name, p.lbls)
		pod.Spec.NodeName = p.node
		pod.Status.Phase = p.phase
		if err := s.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	// A deleted pod must not show.
	if err := s.Create(ctx, newPod("default", "gone", map[string]string{"app": "web"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, podKind, "default", "gone", ""); err != nil {
		t.Fatal(err)
	}
	// Another kind must not show.
	if err := s.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}

	sel := func(s string) labels.Selector {
		l, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	fsel := func(s string) fields.Selector {
		f, err := fields.ParseSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		opts ListOptions
		want []string
	}{
		{"all", ListOptions{}, []string{"default/web-1", "default/web-2", "default/db-1", "prod/web-1", "prod/api.v2"}},
		{"namespace", ListOptions{Namespace: "prod"}, []string{"prod/web-1", "prod/api.v2"}},
		{"empty namespace", ListOptions{Namespace: "empty"}, nil},
		{"label equality", ListOptions{Labels: sel("app=web")}, []string{"default/web-1", "default/web-2", "prod/web-1"}},
		{"label set and namespace", ListOptions{Namespace: "default", Labels: sel("app in (web,db),tier!=front")}, []string{"default/web-2", "default/db-1"}},
		{"label exists", ListOptions{Labels: sel("tier")}, []string{"default/web-1"}},
		{"node name", ListOptions{Fields: fsel("spec.nodeName=n1")}, []string{"default/web-1", "default/db-1"}},
		{"unbound", ListOptions{Fields: fsel("spec.nodeName=")}, []string{"prod/web-1"}},
		{"phase", ListOptions{Fields: fsel("status.phase!=Running")}, []string{"default/web-2", "prod/web-1", "prod/api.v2"}},
		{"metadata fields", ListOptions{Fields: fsel("metadata.namespace=prod,metadata.name=api.v2")}, []string{"prod/api.v2"}},
		{"labels and fields", ListOptions{Labels: sel("app=web"), Fields: fsel("spec.nodeName=n2")}, []string{"default/web-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, rev, err := s.List(ctx, podKind, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rev == 0 {
				t.Fatalf("list revision is 0")
			}
			got := map[string]bool{}
			for _, o := range objs {
				m := o.GetObjectMeta()
				if _, ok := o.(*api.Pod); !ok {
					t.Fatalf("list returned %T", o)
				}
				if m.ResourceVersion == "" || m.UID == "" {
					t.Fatalf("listed object without resourceVersion/uid: %+v", m)
				}
				got[m.Namespace+"/"+m.Name] = true
			}
			if len(got) != len(tc.want) || len(objs) != len(tc.want) {
				t.Fatalf("got %v; want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Fatalf("got %v; want %v", got, tc.want)
				}
			}
			// ListOptions.Matches on decoded objects agrees with the
			// list's own (partial-decode) filter.
			all, _, err := s.List(ctx, podKind, ListOptions{Namespace: tc.opts.Namespace})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range all {
				m := o.GetObjectMeta()
				if tc.opts.Matches(o) != got[m.Namespace+"/"+m.Name] {
					t.Fatalf("Matches(%s/%s) = %v disagrees with List", m.Namespace, m.Name, tc.opts.Matches(o))
				}
			}
		})
	}
	t.Run("empty kind", func(t *testing.T) {
		nsKind := api.KindOf(&api.Namespace{})
		objs, rev, err := s.List(ctx, nsKind, ListOptions{})
		if err != nil || len(objs) != 0 || rev == 0 {
			t.Fatalf("list namespaces = %v, %d, %v; want none at a non-zero revision", objs, rev, err)
		}
	})
}

// recv reads one event or fails after a generous timeout.
func recv(t testing.TB, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no watch event within 20s")
	}
	return Event{}
}

func evString(ev Event) string {
	if ev.Object == nil {
		return ev.Type.String()
	}
	m := ev.Object.GetObjectMeta()
	return fmt.Sprintf("%s %s/%s", ev.Type, m.Namespace, m.Name)
}

func expectEvents(t *testing.T, ch <-chan Event, want ...string) []Event {
	t.Helper()
	var evs []Event
	for i, w := range want {
		ev := recv(t, ch)
		if got := evString(ev); got != w {
			t.Fatalf("event %d = %q; want %q", i, got, w)
		}
		if ev.Object != nil && strconv.FormatUint(ev.Revision, 10) != ev.Object.GetObjectMeta().ResourceVersion {
			t.Fatalf("event %d revision %d but object resourceVersion %s", i, ev.Revision, ev.Object.GetObjectMeta().ResourceVersion)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestWatch(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	a, b, c := newPod("default", "a", nil), newPod("default", "b", nil), newPod("default", "c", nil)
	for _, p := range []*api.Pod{a, b, c} {
		if err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, podKind, "default", "c", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}

	t.Run("from zero", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(ctx, podKind, 0)
		if err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ch, "ADDED default/a", "ADDED default/b", "SYNCED")
		b.Labels = map[string]string{"x": "y"}
		if err := s.Update(ctx, b); err != nil {
			t.Fatal(err)
		}
		d := newPod("default", "d", nil)
		if err := s.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, podKind, "default", "a", ""); err != nil {
			t.Fatal(err)
		}
		evs := expectEvents(t, ch, "MODIFIED default/b", "ADDED default/d", "DELETED default/a")
		if del := evs[2].Object.(*api.Pod); del.UID != a.UID || len(del.Spec.Containers) != 1 {
			t.Fatalf("deleted event does not carry the last value: %+v", del)
		}
		if evs[1].Revision <= evs[0].Revision || evs[2].Revision <= evs[1].Revision {
			t.Fatalf("revisions not increasing: %d %d %d", evs[0].Revision, evs[1].Revision, evs[2].Revision)
		}
	})

	t.Run("from N replays every change after N", func(t *testing.T) {
		objs, rev, err := s.List(ctx, podKind, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 2 {
			t.Fatalf("listed %d pods; want 2 (b, d)", len(objs))
		}
		e := newPod("default", "e", nil)
		if err := s.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		e.Spec.NodeName = "n1"
		if err := s.Update(ctx, e); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, podKind, "default", "b", ""); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(ctx, podKind, rev)
		if err != nil {
			t.Fatal(err)
		}
		// History 1 keeps only e's last revision: the watch reports it as
		// Added (e was created after rev) with its latest value.
		evs := expectEvents(t, ch, "ADDED default/e", "DELETED default/b", "SYNCED")
		if evs[0].Revision <= rev {
			t.Fatalf("first event revision %d not after %d", evs[0].Revision, rev)
		}
		if got := evs[0].Object.(*api.Pod); got.Spec.NodeName != "n1" || got.ResourceVersion != e.ResourceVersion {
			t.Fatalf("e event holds %+v; want the latest value", got.ObjectMeta)
		}
		d, err := s.Get(ctx, podKind, "default", "d")
		if err != nil {
			t.Fatal(err)
		}
		d.GetObjectMeta().Labels = map[string]string{"changed": "yes"}
		if err := s.Update(ctx, d); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ch, "MODIFIED default/d")
		if err := s.Create(ctx, newPod("default", "f", nil)); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ch, "ADDED default/f")
	})

	t.Run("from N at the head syncs at once", func(t *testing.T) {
		_, rev, err := s.List(ctx, podKind, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(ctx, podKind, rev)
		if err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ch, "SYNCED")
	})

	t.Run("every kind", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(ctx, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for {
			ev := recv(t, ch)
			if ev.Type == Synced {
				break
			}
			seen[fmt.Sprintf("%s %T %s", ev.Type, ev.Object, ev.Object.GetObjectMeta().Name)] = true
		}
		for _, w := range []string{"ADDED *api.Node n1", "ADDED *api.Pod d", "ADDED *api.Pod e", "ADDED *api.Pod f"} {
			if !seen[w] {
				t.Fatalf("initial events %v lack %q", seen, w)
			}
		}
		if len(seen) != 4 {
			t.Fatalf("initial events %v; want 4", seen)
		}
	})

	t.Run("empty kind syncs at once and closes on cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		ch, err := s.Watch(ctx, api.KindOf(&api.Namespace{}), 0)
		if err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ch, "SYNCED")
		cancel()
		testutil.Eventually(t, 10*time.Second, func() error {
			select {
			case _, ok := <-ch:
				if !ok {
					return nil
				}
				return testutil.Errorf("unexpected event after cancel")
			default:
				return testutil.Errorf("channel still open")
			}
		})
	})
}

// TestListThenWatchNoGap lists while a writer is busy, then watches from the
// list's revision, and checks that the list plus the events rebuild exactly
// the final state.
func TestListThenWatchNoGap(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 300
	writerDone := make(chan error, 1)
	go func() {
		for i := range n {
			p := newPod("default", fmt.Sprintf("p%d", i), nil)
			if err := s.Create(ctx, p); err != nil {
				writerDone <- err
				return
			}
			if i%3 == 0 {
				p.Status.Phase = api.PodRunning
				if err := s.Update(ctx, p); err != nil {
					writerDone <- err
					return
				}
			}
			if i%5 == 0 {
				if _, err := s.Delete(ctx, podKind, "default", p.Name, ""); err != nil {
					writerDone <- err
					return
				}
			}
		}
		writerDone <- nil
	}()
	// Wait until the writer is under way so the list races it.
	testutil.Eventually(t, 10*time.Second, func() error {
		objs, _, err := s.List(ctx, podKind, ListOptions{})
		if err != nil {
			return err
		}
		if len(objs) < 20 {
			return testutil.Errorf("only %d pods yet", len(objs))
		}
		return nil
	})
	objs, rev, err := s.List(ctx, podKind, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, o := range objs {
		state[o.GetObjectMeta().Name] = o.GetObjectMeta().ResourceVersion
	}
	ch, err := s.Watch(ctx, podKind, rev)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	final, _, err := s.List(ctx, podKind, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, o := range final {
		want[o.GetObjectMeta().Name] = o.GetObjectMeta().ResourceVersion
	}
	var last uint64
	testutil.Eventually(t, 20*time.Second, func() error {
		for {
			select {
			case ev := <-ch:
				if ev.Type == Synced {
					continue
				}
				if ev.Revision <= last {
					t.Fatalf("revision %d after %d: repeated or out of order", ev.Revision, last)
				}
				last = ev.Revision
				m := ev.Object.GetObjectMeta()
				if ev.Type == Deleted {
					delete(state, m.Name)
				} else {
					state[m.Name] = m.ResourceVersion
				}
			default:
				if len(state) != len(want) {
					return testutil.Errorf("rebuilt %d pods; want %d", len(state), len(want))
				}
				for k, v := range want {
					if state[k] != v {
						return testutil.Errorf("pod %s at %q; want %q", k, state[k], v)
					}
				}
				return nil
			}
		}
	})
}

// TestConcurrentUpdatesConflict runs writers racing on one object: every
// successful update is counted, and none is lost.
func TestConcurrentUpdatesConflict(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.Create(ctx, newPod("default", "counter", map[string]string{"n": "0"})); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 10
	errs := make(chan error, writers)
	for range writers {
		go func() {
			for done := 0; done < each; {
				o, err := s.Get(ctx, podKind, "default", "counter")
				if err != nil {
					errs <- err
					return
				}
				p := o.(*api.Pod)
				n, _ := strconv.Atoi(p.Labels["n"])
				p.Labels["n"] = strconv.Itoa(n + 1)
				err = s.Update(ctx, p)
				if api.IsConflict(err) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	o, err := s.Get(ctx, podKind, "default", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.GetObjectMeta().Labels["n"]; got != strconv.Itoa(writers*each) {
		t.Fatalf("counter = %s; want %d (an update was lost)", got, writers*each)
	}
}

// TestTwoStores writes one bucket through two Store values (two processes,
// in effect): an update through the store that did not write the last
// revision reads it back, and one through a store that remembers an older
// revision still fails its compare-and-set.
func TestTwoStores(t *testing.T) {
	srv := testutil.StartNATS(t)
	s1 := openStore(t, testutil.Connect(t, srv))
	s2 := openStore(t, testutil.Connect(t, srv))
	ctx := context.Background()

	p := newPod("default", "web", nil)
	if err := s1.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	stale := *p
	steps := []struct {
		name    string
		s       *Store
		change  func(*api.Pod)
		wantGen int64
	}{
		{"labels through s2", s2, func(p *api.Pod) { p.Labels = map[string]string{"a": "b"} }, 1},
		{"spec through s2", s2, func(p *api.Pod) { p.Spec.NodeName = "n1" }, 2},
		{"status through s1", s1, func(p *api.Pod) { p.Status.Phase = api.PodRunning }, 2},
		{"spec through s1", s1, func(p *api.Pod) { p.Spec.Hostname = "h" }, 3},
		{"same spec through s2", s2, func(p *api.Pod) { p.Labels = nil }, 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change(p)
			if err := st.s.Update(ctx, p); err != nil {
				t.Fatal(err)
			}
			if p.Generation != st.wantGen || p.UID != stale.UID || !p.CreationTimestamp.Equal(stale.CreationTimestamp) {
				t.Fatalf("after update: generation %d (want %d), uid %s, created %v", p.Generation, st.wantGen, p.UID, p.CreationTimestamp)
			}
			o, err := s1.Get(ctx, podKind, "default", "web")
			if err != nil {
				t.Fatal(err)
			}
			if o.GetObjectMeta().Generation != st.wantGen {
				t.Fatalf("stored generation %d; want %d", o.GetObjectMeta().Generation, st.wantGen)
			}
		})
	}
	t.Run("stale revision remembered by s1 is Conflict", func(t *testing.T) {
		stale.Labels = map[string]string{"stale": "1"}
		if err := s1.Update(ctx, &stale); !api.IsConflict(err) {
			t.Fatalf("err = %v; want Conflict", err)
		}
	})
	t.Run("revision s1 wrote itself, since changed through s2, is Conflict", func(t *testing.T) {
		q := newPod("default", "q", nil)
		if err := s1.Create(ctx, q); err != nil {
			t.Fatal(err)
		}
		q1 := *q
		q.Labels = map[string]string{"by": "s2"}
		if err := s2.Update(ctx, q); err != nil {
			t.Fatal(err)
		}
		q1.Labels = map[string]string{"by": "s1"}
		if err := s1.Update(ctx, &q1); !api.IsConflict(err) {
			t.Fatalf("err = %v; want Conflict", err)
		}
	})
	t.Run("cluster-scoped kind with an omitted zero spec", func(t *testing.T) {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}
		if err := s1.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []api.NodeAddress{{Type: api.NodeInternalIP, Address: "10.0.0.1"}}
		if err := s2.Update(ctx, n); err != nil || n.Generation != 1 {
			t.Fatalf("status update: generation %d, err %v; want 1", n.Generation, err)
		}
		n.Spec.Unschedulable = true
		if err := s2.Update(ctx, n); err != nil || n.Generation != 2 {
			t.Fatalf("spec update: generation %d, err %v; want 2", n.Generation, err)
		}
	})
}

// TestUpdateAllKeepsCreation checks that a pipelined update of an object
// this Store created keeps the creation revision, so a watch from before
// the creation reports the object as Added, and that the head cache lets a
// following Update skip its read and still bump generation correctly.
func TestUpdateAllKeepsCreation(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, rev, err := s.List(ctx, podKind, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := newPod("default", "a", nil)
	if err := s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.NodeName = "n1"
	p.Generation++
	if errs := s.UpdateAll(ctx, []api.Object{p}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	ch, err := s.Watch(ctx, podKind, rev)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ch, "ADDED default/a", "SYNCED")
	p.Spec.Hostname = "h"
	if err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.Generation != 3 {
		t.Fatalf("generation = %d; want 3", p.Generation)
	}
	expectEvents(t, ch, "MODIFIED default/a")
}
