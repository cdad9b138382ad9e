package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// shortStreams ends every stream after d, so that tests see the server end
// streams and the client resume them.
func shortStreams(d time.Duration) apiserver.Config {
	return apiserver.Config{StreamMaxDuration: d, StreamHeartbeat: 20 * time.Millisecond}
}

// countRequests counts the requests sent on subject (a plain subscriber
// sees them beside the service's queue subscriber).
func countRequests(t *testing.T, e *env, subject string) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	nc := testutil.Connect(t, e.ns)
	sub, err := nc.Subscribe(subject, func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

func recvWatch(t *testing.T, w *client.Watcher) client.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return client.Event{}
}

// A watch from a list's resourceVersion sees every later change exactly
// once, in order, while the server ends its stream every 150 ms and the
// client resumes it.
func TestWatchResumesWithoutGap(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), shortStreams(150*time.Millisecond))
	var p0 api.Pod
	_ = json.Unmarshal(e.apply(t, podYAML("", "p", map[string]string{"round": "r0"})).Results[0].Object, &p0)
	// A list's revision is what the server's watch has seen: wait until it
	// holds the pod, so that the watch starts after it.
	var rv string
	testutil.Eventually(t, 5*time.Second, func() error {
		_, r, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods"})
		if err != nil {
			return err
		}
		if n, _ := strconv.Atoi(r); n < must(strconv.Atoi(p0.ResourceVersion)) {
			return fmt.Errorf("list at %s, pod at %s", r, p0.ResourceVersion)
		}
		rv = r
		return nil
	})
	requests := countRequests(t, e, api.SubjectWatch)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w, err := e.c.WatchFrom(ctx, api.WatchRequest{Kind: "pods", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 30
	want := make(chan string, rounds)
	go func() {
		for i := 1; i <= rounds; i++ {
			r, err := e.c.Apply(e.ctx, []byte(podYAML("", "p", map[string]string{"round": fmt.Sprintf("r%d", i)})))
			if err != nil {
				t.Errorf("apply round %d: %v", i, err)
				return
			}
			var p api.Pod
			_ = json.Unmarshal(r.Results[0].Object, &p)
			want <- p.ResourceVersion
			time.Sleep(10 * time.Millisecond) // spread the changes over several streams
		}
	}()
	var last uint64
	for i := 1; i <= rounds; i++ {
		ev := recvWatch(t, w)
		p := ev.Object.(*api.Pod)
		if ev.Type != api.EventModified || p.Labels["round"] != fmt.Sprintf("r%d", i) {
			t.Fatalf("event %d: %s round %s, want MODIFIED round r%d", i, ev.Type, p.Labels["round"], i)
		}
		rev, _ := strconv.ParseUint(p.ResourceVersion, 10, 64)
		if rev <= last || p.ResourceVersion != <-want || ev.ResourceVersion != p.ResourceVersion {
			t.Fatalf("event %d at revision %s (event %s) after %d: out of order or not the applied one", i, p.ResourceVersion, ev.ResourceVersion, last)
		}
		last = rev
	}
	select {
	case ev := <-w.Events():
		t.Fatalf("an extra event: %s %s", ev.Type, ev.Object.GetObjectMeta().ResourceVersion)
	case <-time.After(300 * time.Millisecond):
	}
	if n := requests.Load(); n < 3 {
		t.Errorf("%d watch requests: the server never ended a stream (want several resumes)", n)
	}
}

// The server filters: namespace, label selector (an object leaving it is
// DELETED, one entering ADDED), and an empty resourceVersion sends the
// current objects first.
func TestWatchFilters(t *testing.T) {
	e := newEnv(t)
	e.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n")
	e.apply(t, podYAML("", "a", map[string]string{"app": "web"}))
	e.apply(t, podYAML("", "b", map[string]string{"app": "db"}))
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w, err := e.c.WatchFrom(ctx, api.WatchRequest{Kind: "po", LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := recvWatch(t, w); ev.Type != api.EventAdded || ev.Object.GetObjectMeta().Name != "a" || ev.ResourceVersion != "" {
		t.Fatalf("initial event %s %s rv %q, want ADDED a without a revision", ev.Type, ev.Object.GetObjectMeta().Name, ev.ResourceVersion)
	}
	// "0" is Kubernetes' "any revision": this server holds every change
	// since the beginning, so it sends those (with their revisions).
	w0, err := e.c.WatchFrom(ctx, api.WatchRequest{Kind: "po", LabelSelector: "app=web", ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := recvWatch(t, w0); ev.Type != api.EventAdded || ev.Object.GetObjectMeta().Name != "a" || ev.ResourceVersion == "" {
		t.Fatalf("initial event from \"0\": %s %s, want ADDED a", ev.Type, ev.Object.GetObjectMeta().Name)
	}
	e.apply(t, podYAML("other", "a", map[string]string{"app": "web"})) // other namespace: unseen
	e.apply(t, podYAML("", "b", map[string]string{"app": "web"}))      // enters the selector
	e.apply(t, podYAML("", "a", map[string]string{"app": "api"}))      // leaves it
	e.apply(t, podYAML("", "b", map[string]string{"app": "web", "v": `"2"`}))
	for _, want := range []string{"ADDED b web", "DELETED a web", "MODIFIED b web"} {
		ev := recvWatch(t, w)
		m := ev.Object.GetObjectMeta()
		if got := ev.Type + " " + m.Name + " " + m.Labels["app"]; got != want || m.Namespace != "default" {
			t.Fatalf("event %q in %s, want %q in default", got, m.Namespace, want)
		}
	}
}

// A resourceVersion older than the server's history is 410 Expired; bad
// requests are 400 before anything streams.
func TestWatchRefusals(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), apiserver.Config{WatchHistory: 3})
	var last string
	for i := range 5 {
		var p api.Pod
		_ = json.Unmarshal(e.apply(t, podYAML("", fmt.Sprintf("p%d", i), nil)).Results[0].Object, &p)
		last = p.ResourceVersion
	}
	// The history holds the changes once the server's watch has seen them.
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, r, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods"}); err != nil || r < last {
			return fmt.Errorf("list at %s (%v), last change at %s", r, err, last)
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		req  api.WatchRequest
		code int
	}{
		{"expired", api.WatchRequest{Kind: "pods", ResourceVersion: "1"}, 410},
		{"bad revision", api.WatchRequest{Kind: "pods", ResourceVersion: "x1"}, 400},
		{"bad selector", api.WatchRequest{Kind: "pods", LabelSelector: "a in ("}, 400},
		{"unsupported field", api.WatchRequest{Kind: "pods", FieldSelector: "spec.image=x"}, 400},
		{"bad kind", api.WatchRequest{Kind: strings.Repeat("a", 4100)}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := client.Stream(e.ctx, e.nc, 0, api.SubjectWatch, must(json.Marshal(tc.req)),
				func(string) ([]byte, error) { return nil, fmt.Errorf("resumed") },
				func(*nats.Msg) error { return fmt.Errorf("data") })
			if st, ok := err.(*api.Status); !ok || st.Code != tc.code {
				t.Fatalf("error %v, want a %d Status", err, tc.code)
			}
		})
	}
}

func publishLines(t *testing.T, e *env, subject string, lines ...string) {
	t.Helper()
	js := e.js
	for _, l := range lines {
		if _, err := js.Publish(e.ctx, subject, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}

// logs sends what there is (all, or the tail), and a follow gets the lines
// written after it started, across server-ended streams, each once.
func TestLogsTailAndFollow(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), shortStreams(100*time.Millisecond))
	e.apply(t, podOnNode("talker", "n1"))
	subj := api.LogSubject("n1", "default", "talker", "app")
	publishLines(t, e, subj, "one", "two", "three")
	publishLines(t, e, api.LogSubject("n1", "default", "other", "app"), "not mine")
	read := func(req api.LogsRequest) []string {
		var got []string
		if err := e.c.Logs(e.ctx, req, func(l []byte) error { got = append(got, string(l)); return nil }); err != nil {
			t.Fatalf("logs %+v: %v", req, err)
		}
		return got
	}
	two := 2
	for _, tc := range []struct {
		name string
		req  api.LogsRequest
		want string
	}{
		{"all", api.LogsRequest{Pod: "talker"}, "one,two,three"},
		{"tail", api.LogsRequest{Pod: "talker", Tail: &two}, "two,three"},
		{"named container", api.LogsRequest{Namespace: "default", Pod: "talker", Container: "app"}, "one,two,three"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(read(tc.req), ","); got != tc.want {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
	requests := countRequests(t, e, api.SubjectLogs)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- e.c.Logs(ctx, api.LogsRequest{Pod: "talker", Tail: &two, Follow: true}, func(l []byte) error {
			mu.Lock()
			got = append(got, string(l))
			mu.Unlock()
			return nil
		})
	}()
	lines := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(got, ",")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if l := lines(); l != "two,three" {
			return fmt.Errorf("lines %q before the new ones", l)
		}
		return nil
	})
	// Written after the follow began, across several stream ends.
	for i := range 4 {
		publishLines(t, e, subj, fmt.Sprintf("late%d", i))
		time.Sleep(60 * time.Millisecond)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if l := lines(); l != "two,three,late0,late1,late2,late3" {
			return fmt.Errorf("lines %q", l)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if n := requests.Load(); n < 2 {
		t.Errorf("%d logs requests: the follow never resumed", n)
	}
}

func TestLogsRefusals(t *testing.T) {
	e := newEnv(t)
	e.apply(t, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: two\nspec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: busybox\n")
	for _, tc := range []struct {
		name string
		req  api.LogsRequest
		code int
		want string
	}{
		{"missing pod", api.LogsRequest{Pod: "nope"}, 404, "not found"},
		{"several containers", api.LogsRequest{Pod: "two"}, 400, "choose one: a, b"},
		{"unknown container", api.LogsRequest{Pod: "two", Container: "c"}, 400, `"c" is not in pod two`},
		{"4 KB pod name", api.LogsRequest{Pod: strings.Repeat("a", 4100)}, 400, "pod:"},
		{"wildcard namespace", api.LogsRequest{Namespace: "*", Pod: "two", Container: "a"}, 400, "namespace:"},
		{"subject in container", api.LogsRequest{Pod: "two", Container: "a.>", SinceSeq: 1}, 400, "container:"},
		{"resume of a missing pod", api.LogsRequest{Pod: "nope", Container: "a", SinceSeq: 7}, 404, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.c.Logs(e.ctx, tc.req, func([]byte) error { return nil })
			if st, ok := err.(*api.Status); !ok || st.Code != tc.code || !strings.Contains(st.Message, tc.want) {
				t.Fatalf("error %v, want a %d Status with %q", err, tc.code, tc.want)
			}
		})
	}
}

// A line's data message carries the agent's headers (which stream, which
// attempt) and its sequence.
func TestLogsLineHeaders(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podOnNode("talker", "n1"))
	if _, err := e.js.PublishMsg(e.ctx, &nats.Msg{Subject: api.LogSubject("n1", "default", "talker", "app"), Data: []byte("oops"),
		Header: nats.Header{"Kyb-Stream": []string{"stderr"}, "Kyb-Attempt": []string{"2"}, "Nats-Msg-Id": []string{"x"}}}); err != nil {
		t.Fatal(err)
	}
	var got []*nats.Msg
	err := client.Stream(e.ctx, e.nc, 0, api.SubjectLogs, must(json.Marshal(api.LogsRequest{Pod: "talker"})),
		func(string) ([]byte, error) { return nil, fmt.Errorf("resumed") },
		func(m *nats.Msg) error { got = append(got, m); return nil })
	if err != nil || len(got) != 1 {
		t.Fatalf("%d lines, %v", len(got), err)
	}
	h := got[0].Header
	if h.Get("Kyb-Stream") != "stderr" || h.Get("Kyb-Attempt") != "2" || h.Get(api.StreamSeqHeader) == "" || h.Get("Nats-Msg-Id") != "" {
		t.Fatalf("line headers %v", h)
	}
}

// Output larger than one stream window arrives whole and once: the server
// ends each window with the next sequence and the client asks on.
func TestLogsAcrossWindows(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), apiserver.Config{StreamMaxBytes: 100})
	e.apply(t, podOnNode("talker", "n1"))
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("line %02d", i))
	}
	publishLines(t, e, api.LogSubject("n1", "default", "talker", "app"), want...)
	requests := countRequests(t, e, api.SubjectLogs)
	twenty := 20
	for _, tc := range []struct {
		name string
		tail *int
		want []string
	}{
		{"all", nil, want},
		{"tail", &twenty, want[40:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := e.c.Logs(e.ctx, api.LogsRequest{Pod: "talker", Tail: tc.tail}, func(l []byte) error { got = append(got, string(l)); return nil })
			if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("lines %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	// 60 lines of 7 bytes in windows of 100: 4 requests; the last 20: 2.
	testutil.Eventually(t, 2*time.Second, func() error {
		if n := requests.Load(); n != 6 {
			return fmt.Errorf("%d requests for 80 lines in windows of 100 bytes, want 6", n)
		}
		return nil
	})
}

// A follow ends (without an error) once the pod is deleted: its next
// resume finds no pod.
func TestLogsFollowEndsWithThePod(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), shortStreams(100*time.Millisecond))
	e.apply(t, podOnNode("brief", "n1"))
	publishLines(t, e, api.LogSubject("n1", "default", "brief", "app"), "hi")
	done := make(chan error, 1)
	var lines atomic.Int32
	go func() {
		done <- e.c.Logs(e.ctx, api.LogsRequest{Pod: "brief", Follow: true}, func([]byte) error { lines.Add(1); return nil })
	}()
	testutil.Eventually(t, 5*time.Second, func() error {
		if lines.Load() != 1 {
			return fmt.Errorf("%d lines", lines.Load())
		}
		return nil
	})
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "brief"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow still running 5s after the pod was deleted")
	}
}

// podOnNode is a pod bound to node: logs and events count only from the
// node a pod is bound to.
func podOnNode(name, node string) string {
	return podYAML("", name, nil) + "  nodeName: " + node + "\n"
}

// `kyb logs -c INIT` reads an init container's output, as kubectl's does;
// without -c the pod's only (app) container is still the default.
func TestLogsOfInitContainer(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), shortStreams(100*time.Millisecond))
	e.apply(t, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: init-talker\nspec:\n  nodeName: n1\n  initContainers:\n  - name: setup\n    image: x\n  containers:\n  - name: app\n    image: x\n")
	publishLines(t, e, api.LogSubject("n1", "default", "init-talker", "setup"), "migrating", "done")
	publishLines(t, e, api.LogSubject("n1", "default", "init-talker", "app"), "serving")
	for _, tc := range []struct {
		name, container, want string
	}{
		{"init container", "setup", "migrating,done"},
		{"default", "", "serving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			req := api.LogsRequest{Pod: "init-talker", Container: tc.container}
			if err := e.c.Logs(e.ctx, req, func(l []byte) error { got = append(got, string(l)); return nil }); err != nil {
				t.Fatalf("logs %+v: %v", req, err)
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}
