package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// logs -l prints every selected pod's output, --prefix names each line's
// source and --timestamps its time (the agent's Kyb-Time header).
func TestLogsSelectorPrefixTimestamps(t *testing.T) {
	url := startCluster(t)
	bound := func(name, labels string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  labels: {" + labels + "}\nspec:\n  nodeName: n1\n  containers:\n  - name: app\n    image: busybox\n---\n"
	}
	applyText(t, url, bound("web-1", "app: web")+bound("web-2", "app: web")+bound("db", "app: db"))
	js := jetstreamOf(t, controlURL)
	at := time.Date(2026, 11, 29, 4, 5, 6, 7000, time.UTC)
	for _, pod := range []string{"web-1", "web-2", "db"} {
		m := nats.NewMsg(api.LogSubject("n1", "default", pod, "app"))
		m.Data = []byte("hello from " + pod)
		m.Header.Set("Kyb-Time", at.Format(time.RFC3339Nano))
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "-l", "app=web"}, "hello from web-1\nhello from web-2\n"},
		{[]string{"logs", "-l", "app=web", "--prefix"}, "[pod/web-1/app] hello from web-1\n[pod/web-2/app] hello from web-2\n"},
		{[]string{"logs", "pod/db", "--timestamps"}, "2026-11-29T04:05:06.000007Z hello from db\n"},
		{[]string{"logs", "db", "--prefix", "--timestamps"}, "[pod/db/app] 2026-11-29T04:05:06.000007Z hello from db\n"},
		{[]string{"logs", "-l", "app=none"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := kybOut(url, tc.args...)
			if err != nil || out != tc.want {
				t.Errorf("printed %q (%v, %s), want %q", out, err, errOut, tc.want)
			}
		})
	}
	// A container that has not started says so instead of printing nothing.
	applyText(t, url, bound("quiet", "")+podYAML("unbound", ""))
	for pod, want := range map[string]string{
		"quiet":   `container "app" in pod "quiet" is waiting to start: ContainerCreating`,
		"unbound": `container "app" in pod "unbound" is waiting to start: the pod is not scheduled yet`,
	} {
		if out, _, err := kybOut(url, "logs", pod); err == nil || !strings.Contains(err.Error(), want) || out != "" {
			t.Errorf("logs %s: %q, %v; want the error %q", pod, out, err, want)
		}
	}
	if _, _, err := kybOut(url, "logs", "db", "-l", "app=db"); err == nil || !strings.Contains(err.Error(), "either a POD or -l") {
		t.Errorf("logs POD -l: %v", err)
	}
}

// Shell completion (cobra's __complete) offers kinds, then the names the
// server has, TYPE/NAME forms and namespaces.
func TestCompletion(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("web", "")+podYAML("worker", "")+podYAML("db", "")+"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "po"}, "pods\n"},
		{[]string{"get", "pods", "w"}, "web\nworker\n"},
		{[]string{"delete", "pod/w"}, "pod/web\npod/worker\n"},
		{[]string{"logs", "d"}, "db\n"},
		{[]string{"get", "pods", "-n", "te"}, "team\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, _, err := kybOut(url, append([]string{"__complete"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			got, _, _ := strings.Cut(out, ":") // the directive follows the names
			if got != tc.want {
				t.Errorf("completed %q, want %q", got, tc.want)
			}
		})
	}
}

// logs --previous prints the attempt before the last restart, and
// --since-time only what was written from then on.
func TestLogsPreviousSince(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: crashy\nspec:\n  nodeName: n1\n  containers:\n  - name: app\n    image: busybox\n")
	js := jetstreamOf(t, controlURL)
	publish := func(attempt, text string) {
		t.Helper()
		m := nats.NewMsg(api.LogSubject("n1", "default", "crashy", "app"))
		m.Data = []byte(text)
		m.Header.Set(api.LogAttemptHeader, attempt)
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := kybOut(url, "logs", "crashy", "--previous"); err == nil || !strings.Contains(err.Error(), `previous terminated container "app" in pod "crashy" not found`) {
		t.Errorf("logs --previous of a container that never restarted: %v", err)
	}
	publish("0", "first run 1")
	publish("0", "first run 2")
	publish("0", "first run 3")
	time.Sleep(20 * time.Millisecond) // stream timestamps are the server's clock: a gap to cut at
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	publish("1", "second run")
	setRestartCount(t, "crashy", 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "crashy", "-p"}, "first run 1\nfirst run 2\nfirst run 3\n"},
		{[]string{"logs", "crashy", "--previous", "--tail", "2"}, "first run 2\nfirst run 3\n"},
		{[]string{"logs", "crashy", "--since-time", cut.UTC().Format(time.RFC3339Nano)}, "second run\n"},
		{[]string{"logs", "crashy", "--since", "1h"}, "first run 1\nfirst run 2\nfirst run 3\nsecond run\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := kybOut(url, tc.args...)
			if err != nil || out != tc.want {
				t.Errorf("printed %q (%v, %s), want %q", out, err, errOut, tc.want)
			}
		})
	}
	for _, args := range [][]string{
		{"logs", "crashy", "-p", "-f"},
		{"logs", "crashy", "--since", "1h", "--since-time", "2026-11-29T08:00:00Z"},
		{"logs", "crashy", "--since-time", "yesterday"},
	} {
		if _, _, err := kybOut(url, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// setRestartCount sets the restart count of pod's first container, as its
// agent would, through the control plane's own connection.
func setRestartCount(t *testing.T, pod string, n int32) {
	t.Helper()
	nc, err := nats.Connect(controlURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, js, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	podKind := api.KindOf(&api.Pod{})
	obj, err := st.Get(ctx, podKind, "default", pod)
	if err != nil {
		t.Fatal(err)
	}
	p := obj.(*api.Pod)
	p.Status.ContainerStatuses = []api.ContainerStatus{{Name: p.Spec.Containers[0].Name, RestartCount: n}}
	if err := st.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		out, _, err := kybOut(strings.Replace(controlURL, "control:c", "user:u", 1), "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
		if out != fmt.Sprint(n) {
			return fmt.Errorf("restart count %q (%v), want %d", out, err, n)
		}
		return nil
	})
}
