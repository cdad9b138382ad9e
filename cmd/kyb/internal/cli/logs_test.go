package cli

import (
	"context"
	"strings"
	"testing"
	"time"

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
