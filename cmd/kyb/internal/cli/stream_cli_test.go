package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// startCluster runs a real NATS server with JetStream and the apiserver,
// and returns a URL for a user allowed nothing but kyb.api.v1.> and its
// inbox: no $JS.API.>, $KV.>, $O.> and no kyb.events.> (what issue 7's
// accounts give users). The control plane's own user may do anything.
func startCluster(t *testing.T) string {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "control", Password: "c"},
			{Username: "user", Password: "u", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"kyb.api.v1.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	connect := func(name string) *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("control", "c"), nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	js, err := jetstream.New(connect("store"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, js, store.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := store.OpenHeartbeats(ctx, js, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := apiserver.New(connect("apiserver"), st, hb, apiserver.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	controlURL = "nats://control:c@" + ns.Addr().String()
	return "nats://user:u@" + ns.Addr().String()
}

// controlURL is the control plane's URL of the last startCluster, for
// writing logs as an agent would.
var controlURL string

func kyb(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"--server", url}, args...), Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String(), err
}

// module push and ls, logs, describe and get -w print what they printed when they
// used JetStream and kyb.events directly, for a user allowed nothing but
// kyb.api.v1.> (before, each failed with a permissions violation).
func TestStreamingCommandsOutput(t *testing.T) {
	url := startCluster(t)
	mod := filepath.Join(t.TempDir(), "prog.wasm")
	if err := os.WriteFile(mod, append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{7}, 600<<10)...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kyb(t, url, "module", "push", "prog", mod)
	if err != nil {
		t.Fatalf("module push: %v", err)
	}
	if !regexp.MustCompile(`^module/prog pushed \(614408 bytes, sha256:[0-9a-f]{64}\); use image: kyb://prog\n$`).MatchString(out) {
		t.Errorf("module push printed %q", out)
	}
	out, err = kyb(t, url, "module", "ls")
	if err != nil {
		t.Fatalf("module ls: %v", err)
	}
	if !regexp.MustCompile(`^NAME   SIZE     DIGEST\nprog   614408   sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("module ls printed %q", out)
	}

	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: talker\nspec:\n  nodeName: n1\n  containers:\n  - name: app\n    image: busybox\n"
	f := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(f, []byte(pod), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kyb(t, url, "apply", "-f", f); err != nil {
		t.Fatal(err)
	}
	t.Run("logs", func(t *testing.T) {
		js := jetstreamOf(t, controlURL)
		for _, l := range []string{"one", "two\n", "three"} {
			if _, err := js.Publish(context.Background(), api.LogSubject("n1", "default", "talker", "app"), []byte(l)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"logs", "talker"}, "one\ntwo\nthree\n"},
			{[]string{"logs", "talker", "--tail", "2"}, "two\nthree\n"},
			{[]string{"logs", "talker", "-c", "app", "-n", "default"}, "one\ntwo\nthree\n"},
		} {
			if out, err := kyb(t, url, tc.args...); err != nil || out != tc.want {
				t.Errorf("%v printed %q (%v), want %q", tc.args, out, err, tc.want)
			}
		}
		if _, err := kyb(t, url, "logs", "nope"); err == nil || !strings.Contains(err.Error(), `pod "nope" not found`) {
			t.Errorf("logs of a missing pod: %v", err)
		}
	})
	t.Run("events", func(t *testing.T) {
		// What the agent of n1 records (as the control plane, which may
		// speak for any node): a repeated BackOff, folded into one event.
		nc, err := nats.Connect(controlURL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		ev := api.Event{InvolvedObject: api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "talker"},
			Type: api.EventTypeWarning, Reason: "BackOff", Message: "back-off restarting", Source: api.EventSource{Component: "kubelet"}}
		b, _ := json.Marshal(ev)
		for range 2 {
			reply, err := nc.Request(api.NodeSubject("n1", api.NodeVerbEvents), b, 10*time.Second)
			if err != nil || reply.Header.Get("Nats-Service-Error-Code") != "" {
				t.Fatalf("record event: %v %s", err, reply.Data)
			}
		}
		out, err := kyb(t, url, "describe", "pod", "talker")
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		if !regexp.MustCompile(`(?m)^  Warning +BackOff +\S+ \(x2 over \S+\) +kubelet, n1 +back-off restarting$`).MatchString(out) {
			t.Errorf("describe printed no event row:\n%s", out)
		}
		for _, args := range [][]string{
			{"get", "events"},
			{"get", "ev", "-A"},
			{"get", "events", "--field-selector", "involvedObject.name=talker,involvedObject.kind=Pod"},
		} {
			out, err := kyb(t, url, args...)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if !regexp.MustCompile(`(?m)^(NAMESPACE +)?LAST SEEN +TYPE +REASON +OBJECT +MESSAGE\n(default +)?\S+ \(x2 over \S+\) +Warning +BackOff +pod/talker +back-off restarting\n$`).MatchString(out) {
				t.Errorf("%v printed:\n%s", args, out)
			}
		}
		out, err = kyb(t, url, "get", "events", "--field-selector", "involvedObject.name=other")
		if err != nil || out != "" {
			t.Errorf("get events of another object: %q, %v", out, err)
		}
		if _, err := kyb(t, url, "get", "events", "--field-selector", "spec.nodeName=n1"); err == nil || !strings.Contains(err.Error(), "fieldSelector") {
			t.Errorf("get events with an unsupported field: %v", err)
		}

		// -w: the current events, then a repeat as it is recorded.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wout testutil.SyncBuffer
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, []string{"--server", url, "get", "events", "-w", "--field-selector", "involvedObject.name=talker"}, Streams{In: strings.NewReader(""), Out: &wout, Err: &wout})
		}()
		testutil.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(wout.String(), "(x2 over") {
				return errorf("get events -w printed %q", wout.String())
			}
			return nil
		})
		if reply, err := nc.Request(api.NodeSubject("n1", api.NodeVerbEvents), b, 10*time.Second); err != nil || reply.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("record event: %v", err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if !regexp.MustCompile(`(?m)^\S+ \(x3 over \S+\) +Warning +BackOff +pod/talker +back-off restarting$`).MatchString(wout.String()) {
				return errorf("get events -w printed %q", wout.String())
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("get events -w ended with %v", err)
		}
	})
	t.Run("get -w", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out testutil.SyncBuffer
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, []string{"--server", url, "get", "pods", "-w"}, Streams{In: strings.NewReader(""), Out: &out, Err: &out})
		}()
		testutil.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "talker") {
				return errorf("get -w printed %q", out.String())
			}
			return nil
		})
		if _, err := kyb(t, url, "delete", "pod", "talker"); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := strings.Count(out.String(), "talker"); n < 2 {
				return errorf("get -w printed %q: no row for the deletion", out.String())
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("get -w ended with %v", err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "STATUS") {
			t.Errorf("get -w header %q", lines[0])
		}
	})
}

func errorf(format string, args ...any) error { return testutil.Errorf(format, args...) }

func jetstreamOf(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
