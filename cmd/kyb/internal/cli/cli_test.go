package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("kind: Pod"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, []byte("  \n"), 0o644)

	got, err := readManifests([]string{dir, "-"}, strings.NewReader("kind: Namespace"), false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got {
		names = append(names, filepath.Base(m.name))
	}
	if strings.Join(names, ",") != "a.json,b.yaml,stdin" {
		t.Errorf("read %v, want a.json,b.yaml,stdin (sorted, .txt skipped)", names)
	}
	for _, tc := range []struct {
		name, arg, want string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), "no such file"},
		{"empty file", empty, "empty"},
		{"dir without manifests", t.TempDir(), "no .yaml, .yml or .json file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readManifests([]string{tc.arg}, nil, false); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPodStatusText(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		pod  api.Pod
		want string
	}{
		{"unscheduled", api.Pod{Status: api.PodStatus{Phase: api.PodPending, Conditions: []api.PodCondition{{Type: api.PodScheduled, Status: api.ConditionFalse, Reason: "Unschedulable"}}}}, "Pending"},
		{"waiting reason wins", api.Pod{Spec: api.PodSpec{NodeName: "n"}, Status: api.PodStatus{Phase: api.PodPending, ContainerStatuses: []api.ContainerStatus{{State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}}}, "ImagePullBackOff"},
		{"running", api.Pod{Status: api.PodStatus{Phase: api.PodRunning, ContainerStatuses: []api.ContainerStatus{{State: api.ContainerState{Running: &api.ContainerStateRunning{}}}}}}, "Running"},
		{"succeeded", api.Pod{Status: api.PodStatus{Phase: api.PodSucceeded, ContainerStatuses: []api.ContainerStatus{{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{Reason: "Completed"}}}}}}, "Completed"},
		{"oom", api.Pod{Status: api.PodStatus{Phase: api.PodFailed, ContainerStatuses: []api.ContainerStatus{{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}}}}, "OOMKilled"},
		{"terminating", api.Pod{ObjectMeta: api.ObjectMeta{DeletionTimestamp: &now}, Status: api.PodStatus{Phase: api.PodRunning}}, "Terminating"},
		{"init running", initPod(running(), waiting(runtimes.ReasonPodInitializing)), "Init:0/2"},
		{"init second running", initPod(terminated(0, runtimes.ReasonCompleted), running()), "Init:1/2"},
		{"init not started", initPod(waiting(runtimes.ReasonPodInitializing), waiting(runtimes.ReasonPodInitializing)), "Init:0/2"},
		{"init image pull back-off", initPod(waiting(runtimes.ReasonImagePullBackOff), waiting(runtimes.ReasonPodInitializing)), "Init:ImagePullBackOff"},
		{"init error", initPod(terminated(0, runtimes.ReasonCompleted), terminated(1, runtimes.ReasonFailed)), "Init:Error"},
		{"init crash loop", initPod(waiting(runtimes.ReasonCrashLoopBackOff), waiting(runtimes.ReasonPodInitializing)), "Init:CrashLoopBackOff"},
		{"init exit code without reason", initPod(terminated(3, ""), waiting(runtimes.ReasonPodInitializing)), "Init:ExitCode:3"},
		{"init done, container creating", func() api.Pod {
			p := initPod(terminated(0, runtimes.ReasonCompleted), terminated(0, runtimes.ReasonCompleted))
			p.Status.ContainerStatuses = []api.ContainerStatus{waiting(runtimes.ReasonContainerCreating)}
			return p
		}(), "ContainerCreating"},
		{"last container decides", api.Pod{Spec: api.PodSpec{NodeName: "n"}, Status: api.PodStatus{Phase: api.PodRunning, ContainerStatuses: []api.ContainerStatus{
			running(), waiting(runtimes.ReasonCrashLoopBackOff)}}}, "CrashLoopBackOff"},
		{"a completed sidecar beside a ready container", api.Pod{Spec: api.PodSpec{NodeName: "n"}, Status: api.PodStatus{Phase: api.PodRunning,
			Conditions:        []api.PodCondition{{Type: api.PodReady, Status: api.ConditionTrue}},
			ContainerStatuses: []api.ContainerStatus{terminated(0, runtimes.ReasonCompleted), {Ready: true, State: api.ContainerState{Running: &api.ContainerStateRunning{}}}}}}, "Running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podStatusText(&tc.pod); got != tc.want {
				t.Errorf("status %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPrinterTables(t *testing.T) {
	created := time.Now().Add(-90 * time.Second)
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "prod", CreationTimestamp: created},
		Spec: api.PodSpec{NodeName: "n1", Containers: []api.Container{{Name: "a"}, {Name: "b"}}},
		Status: api.PodStatus{Phase: api.PodRunning, PodIP: "10.42.0.7", ContainerStatuses: []api.ContainerStatus{
			{Name: "a", Ready: true, RestartCount: 2}, {Name: "b", Ready: false}}}}
	var out bytes.Buffer
	p, err := newPrinter(&out, "wide", true)
	if err != nil {
		t.Fatal(err)
	}
	kind, _ := api.LookupKind("po")
	if err := p.print(kind, []api.Object{pod}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("table:\n%s", out.String())
	}
	for _, want := range []string{"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "RUNTIME"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %s", lines[0], want)
		}
	}
	for _, want := range []string{"prod", "web", "1/2", "Running", "2", "90s", "10.42.0.7", "n1", "containerd"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %s", lines[1], want)
		}
	}
	if _, err := newPrinter(&out, "xml", false); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("bad output format: %v", err)
	}
}

func TestBadInvocations(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "gizmos"}, `unknown kind "gizmos"`},
		{[]string{"apply"}, "-f is required"},
		{[]string{"delete", "pod"}, "want KIND NAME"},
		{[]string{"server", "--sync", "sometimes"}, "--sync"},
		{[]string{"server", "--metrics-listen", "0.0.0.0:0"}, "--metrics-token-file"},
		{[]string{"server", "--metrics-listen", "nohost"}, "--metrics-listen"},
		{[]string{"server", "--metrics-listen", "127.0.0.1:0", "--metrics-token-file", "/nonexistent/token"}, "--metrics-token-file"},
		{[]string{"top", "deployments"}, "want nodes or pods"},
		{[]string{"top", "pods", "--sort-by", "size"}, "--sort-by"},
		{[]string{"module", "push", "m", "/etc/hostname"}, "not a WebAssembly module"},
		{[]string{"agent", "--wasm-host", "sometimes"}, "--wasm-host"},
		{[]string{"wasm-host", "--dir", "relative/dir"}, "--dir must be an absolute"},
		{[]string{"wasm-host", "--dir", "/nonexistent-kyb-wasm-host"}, "read wasm host config"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), append([]string{"--server", "nats://127.0.0.1:1"}, tc.args...), Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// initPod is a scheduled pod with two init containers of the given states
// and one app container waiting for them.
func initPod(a, b api.ContainerStatus) api.Pod {
	return api.Pod{
		Spec: api.PodSpec{NodeName: "n", InitContainers: []api.Container{{Name: "i0"}, {Name: "i1"}}, Containers: []api.Container{{Name: "app"}}},
		Status: api.PodStatus{Phase: api.PodPending, InitContainerStatuses: []api.ContainerStatus{a, b},
			ContainerStatuses: []api.ContainerStatus{waiting(runtimes.ReasonPodInitializing)}},
	}
}

func waiting(reason string) api.ContainerStatus {
	return api.ContainerStatus{State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: reason}}}
}

func running() api.ContainerStatus {
	return api.ContainerStatus{State: api.ContainerState{Running: &api.ContainerStateRunning{}}}
}

func terminated(code int32, reason string) api.ContainerStatus {
	return api.ContainerStatus{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: code, Reason: reason}}}
}
