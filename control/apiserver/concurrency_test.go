package apiserver_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// counterPod is a pod manifest whose annotation count is n, conditional on
// rv when rv is not empty.
func counterPod(name string, n int, rv, uid string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  annotations:\n    count: %q\n", name, strconv.Itoa(n))
	if rv != "" {
		fmt.Fprintf(&b, "  resourceVersion: %q\n", rv)
	}
	if uid != "" {
		fmt.Fprintf(&b, "  uid: %q\n", uid)
	}
	b.WriteString("spec:\n  containers:\n  - name: app\n    image: nginx:1.27\n")
	return b.String()
}

func countOf(t testing.TB, p *api.Pod) int {
	t.Helper()
	n, err := strconv.Atoi(p.Annotations["count"])
	if err != nil {
		t.Fatalf("count annotation %q: %v", p.Annotations["count"], err)
	}
	return n
}

// TestConcurrentWritersLoseNothing: two writers each doing 200 x (get ->
// apply with the resourceVersion read). Every success is a real update,
// every lost race a 409, and the final count equals the successes. Before,
// apply overwrote the client's resourceVersion: every apply succeeded and
// updates were lost.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	e := newEnv(t)
	e.apply(t, counterPod("counter", 0, "", ""))
	const writers, rounds = 2, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	successes, conflicts := 0, 0
	errs := make(chan error, writers)
	for w := range writers {
		c := client.New(testutil.Connect(t, e.ns, nats.Name(fmt.Sprintf("writer-%d", w))))
		wg.Go(func() {
			for range rounds {
				obj, err := c.Get(e.ctx, "pod", "", "counter")
				if err != nil {
					errs <- err
					return
				}
				p := obj.(*api.Pod)
				n, err := strconv.Atoi(p.Annotations["count"])
				if err != nil {
					errs <- fmt.Errorf("count annotation: %w", err)
					return
				}
				r, err := c.Apply(e.ctx, []byte(counterPod("counter", n+1, p.ResourceVersion, "")))
				switch {
				case api.IsConflict(err):
					if !strings.Contains(err.Error(), "resourceVersion "+p.ResourceVersion+" given, stored ") {
						errs <- fmt.Errorf("conflict does not name both versions: %v", err)
						return
					}
					mu.Lock()
					conflicts++
					mu.Unlock()
				case err != nil:
					errs <- err
					return
				default:
					if a := r.Results[0].Action; a != api.ActionConfigured {
						errs <- fmt.Errorf("a successful conditional apply was %q, not a real update", a)
						return
					}
					mu.Lock()
					successes++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	final := countOf(t, e.pod(t, "", "counter"))
	t.Logf("%d successes, %d conflicts, final count %d", successes, conflicts, final)
	if successes+conflicts != writers*rounds {
		t.Fatalf("%d successes + %d conflicts != %d applies", successes, conflicts, writers*rounds)
	}
	if final != successes {
		t.Fatalf("final count %d != %d successful updates: updates were lost", final, successes)
	}
}

func TestConditionalApply(t *testing.T) {
	e := newEnv(t)
	e.apply(t, counterPod("web", 0, "", ""))
	cur := e.pod(t, "", "web")
	stale := cur.ResourceVersion
	e.apply(t, counterPod("web", 1, "", "")) // an unconditional update moves it on
	now := e.pod(t, "", "web")

	t.Run("stale resourceVersion", func(t *testing.T) {
		_, err := e.c.Apply(e.ctx, []byte(counterPod("web", 5, stale, "")))
		want := fmt.Sprintf("metadata.resourceVersion %s given, stored %s", stale, now.ResourceVersion)
		var st *api.Status
		if !errors.As(err, &st) || st.Code != 409 || !strings.Contains(st.Message, want) {
			t.Fatalf("apply with stale resourceVersion: %v, want 409 naming %q", err, want)
		}
		if got := countOf(t, e.pod(t, "", "web")); got != 1 {
			t.Fatalf("count %d after a refused apply, want 1", got)
		}
	})
	t.Run("resourceVersion 1", func(t *testing.T) {
		if _, err := e.c.Apply(e.ctx, []byte(counterPod("web", 5, "1", ""))); !api.IsConflict(err) {
			t.Fatalf("apply with resourceVersion 1: %v, want 409", err)
		}
	})
	t.Run("current resourceVersion", func(t *testing.T) {
		r, err := e.c.Apply(e.ctx, []byte(counterPod("web", 2, now.ResourceVersion, now.UID)))
		if err != nil || r.Results[0].Action != api.ActionConfigured {
			t.Fatalf("apply with the current resourceVersion: %v %v", r, err)
		}
	})
	t.Run("wrong uid", func(t *testing.T) {
		p := e.pod(t, "", "web")
		_, err := e.c.Apply(e.ctx, []byte(counterPod("web", 9, p.ResourceVersion, "00000000-0000-4000-8000-000000000000")))
		if !api.IsConflict(err) || !strings.Contains(err.Error(), "metadata.uid") {
			t.Fatalf("apply with another uid: %v, want 409", err)
		}
	})
	t.Run("malformed resourceVersion", func(t *testing.T) {
		_, err := e.c.Apply(e.ctx, []byte(counterPod("web", 9, "abc", "")))
		var st *api.Status
		if !errors.As(err, &st) || st.Code != 422 || len(st.Causes) != 1 || st.Causes[0].Field != "metadata.resourceVersion" {
			t.Fatalf("apply with resourceVersion abc: %v, want 422 naming metadata.resourceVersion", err)
		}
	})
	t.Run("create with resourceVersion", func(t *testing.T) {
		_, err := e.c.Apply(e.ctx, []byte(counterPod("fresh", 0, "7", "")))
		if !api.IsConflict(err) || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("create with resourceVersion: %v, want 409", err)
		}
		if _, err := e.c.Get(e.ctx, "pod", "", "fresh"); !api.IsNotFound(err) {
			t.Fatalf("refused create stored the pod: %v", err)
		}
	})
	t.Run("multi-document all or nothing", func(t *testing.T) {
		manifest := counterPod("new-a", 0, "", "") + "---\n" + counterPod("new-b", 0, "", "") + "---\n" + counterPod("web", 7, stale, "")
		_, err := e.c.Apply(e.ctx, []byte(manifest))
		if !api.IsConflict(err) || !strings.Contains(err.Error(), "nothing was applied") || !strings.Contains(err.Error(), "document 3") {
			t.Fatalf("multi-document apply with a stale third document: %v, want 409 for document 3", err)
		}
		for _, n := range []string{"new-a", "new-b"} {
			if _, err := e.c.Get(e.ctx, "pod", "", n); !api.IsNotFound(err) {
				t.Fatalf("document %s was applied although document 3 failed its precondition: %v", n, err)
			}
		}
	})
}

func TestDeletePreconditions(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"pod", "node", "namespace"} {
		t.Run(kind, func(t *testing.T) {
			var manifest string
			switch kind {
			case "pod":
				manifest = podYAML("", "victim", nil)
			case "node":
				manifest = "apiVersion: v1\nkind: Node\nmetadata:\n  name: victim\n"
			case "namespace":
				manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: victim\n"
			}
			e.apply(t, manifest)
			obj, err := e.c.Get(e.ctx, kind, "", "victim")
			if err != nil {
				t.Fatal(err)
			}
			m := obj.GetObjectMeta()
			for _, tc := range []struct {
				name string
				pre  *api.Preconditions
				want string
			}{
				{"wrong uid", client.IfMatches("00000000-0000-4000-8000-000000000000", ""), fmt.Sprintf("uid %q given, stored %q", "00000000-0000-4000-8000-000000000000", m.UID)},
				{"stale resourceVersion", client.IfMatches("", "1"), fmt.Sprintf("resourceVersion 1 given, stored %s", m.ResourceVersion)},
				{"right uid, stale resourceVersion", client.IfMatches(m.UID, "1"), "resourceVersion 1 given"},
			} {
				_, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: kind, Name: "victim", Preconditions: tc.pre})
				if !api.IsConflict(err) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: delete = %v, want 409 naming %q", tc.name, err, tc.want)
				}
				if _, err := e.c.Get(e.ctx, kind, "", "victim"); err != nil {
					t.Fatalf("%s: object gone after a refused delete: %v", tc.name, err)
				}
			}
			if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: kind, Name: "victim", Preconditions: client.IfMatches(m.UID, m.ResourceVersion)}); err != nil {
				t.Fatalf("delete with matching preconditions: %v", err)
			}
			testutil.Eventually(t, 5*time.Second, func() error {
				if _, err := e.c.Get(e.ctx, kind, "", "victim"); !api.IsNotFound(err) {
					return fmt.Errorf("still there after delete: %v", err)
				}
				return nil
			})
		})
	}
	t.Run("malformed", func(t *testing.T) {
		_, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "x", Preconditions: client.IfMatches("", "abc")})
		var st *api.Status
		if !errors.As(err, &st) || st.Code != 400 || st.Causes[0].Field != "preconditions.resourceVersion" {
			t.Fatalf("delete with resourceVersion abc: %v, want 400 naming preconditions.resourceVersion", err)
		}
	})
}
