package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/control/apiserver"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func getPod(t *testing.T, url, name string) (*api.Pod, error) {
	t.Helper()
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	o, err := c.Get(context.Background(), "Pod", "default", name)
	if err != nil {
		return nil, err
	}
	return o.(*api.Pod), nil
}

// delete goes on past a missing object and fails at the end, as kubectl
// does; --all and -l delete what they list.
func TestDeleteForms(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("a", "app: x")+podYAML("b", "app: x")+podYAML("c", "app: z")+podYAML("d", "app: z")+podYAML("e", ""))
	out, errOut, err := kybOut(url, "delete", "pod", "a", "nope", "b")
	if err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
		t.Errorf("delete past a not-found: error %v", err)
	}
	if out != "pod/a deleted\npod/b deleted\n" || !strings.Contains(errOut, `NotFound`) {
		t.Errorf("delete printed %q, stderr %q", out, errOut)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := getPod(t, url, n); !api.IsNotFound(err) {
			t.Errorf("pod %s after delete: %v", n, err)
		}
	}
	if out, _, err := kybOut(url, "delete", "pods/c"); err != nil || out != "pod/c deleted\n" {
		t.Errorf("delete pods/c: %q %v", out, err)
	}
	if out, _, err := kybOut(url, "delete", "pod", "-l", "app=z"); err != nil || out != "pod/d deleted\n" {
		t.Errorf("delete -l: %q %v", out, err)
	}
	if _, err := getPod(t, url, "e"); err != nil {
		t.Fatalf("delete -l deleted a pod it does not select: %v", err)
	}
	if out, _, err := kybOut(url, "delete", "pod", "--all"); err != nil || out != "pod/e deleted\n" {
		t.Errorf("delete --all: %q %v", out, err)
	}
	for _, bad := range [][]string{{"delete", "pod", "x", "--all"}, {"delete", "pod", "pods/x"}, {"delete", "-f", "x.yaml", "--all"}} {
		if _, _, err := kybOut(url, bad...); err == nil {
			t.Errorf("%v succeeded", bad)
		}
	}
}

func TestLabelAndAnnotate(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("web", "app: web")+podYAML("db", "app: db"))
	for _, tc := range []struct {
		args    []string
		out     string
		wantErr string
	}{
		{[]string{"label", "pod", "web", "tier=front"}, "pod/web labeled\n", ""},
		{[]string{"label", "pod", "web", "app=other"}, "", "--overwrite is false"},
		{[]string{"label", "pod", "web", "app=other", "--overwrite"}, "pod/web labeled\n", ""},
		{[]string{"label", "pods/web", "tier-"}, "pod/web labeled\n", ""},
		{[]string{"label", "pods/web", "tier-"}, "pod/web not labeled\n", ""},
		{[]string{"label", "pod", "web", "bad key=x"}, "", "invalid key"},
		{[]string{"label", "pod", "web", "k=not valid!"}, "", "invalid label value"},
		{[]string{"label", "pod", "web"}, "", "at least one key=value"},
		{[]string{"label", "pod", "nope", "k=v"}, "", `"nope" not found`},
		{[]string{"label", "pod", "--all", "team=core"}, "pod/db labeled\npod/web labeled\n", ""},
		{[]string{"annotate", "pod", "web", "note=hello world"}, "pod/web annotated\n", ""},
		{[]string{"annotate", "pod", "web", "note=again"}, "", "--overwrite is false"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := kybOut(url, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.out {
				t.Errorf("printed %q (%v, %s), want %q", out, err, errOut, tc.out)
			}
		})
	}
	p, err := getPod(t, url, "web")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.Labels) != "map[app:other team:core]" || p.Annotations["note"] != "hello world" {
		t.Errorf("labels %v, annotations %v", p.Labels, p.Annotations)
	}
	// Concurrent labels each read, change and compare-and-set: a 409 is
	// retried on a fresh read, so no label is lost.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, _, errs[i] = kybOut(url, "label", "pod", "db", fmt.Sprintf("k%d=v", i))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	p, err = getPod(t, url, "db")
	if err != nil {
		t.Fatal(err)
	}
	for i := range errs {
		if p.Labels[fmt.Sprintf("k%d", i)] != "v" {
			t.Errorf("label k%d lost: %v", i, p.Labels)
		}
	}
}

func TestWaitAndAPIResources(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("web", "app: web"))
	t.Run("delete", func(t *testing.T) {
		var out testutil.SyncBuffer
		done := make(chan error, 1)
		go func() {
			done <- Run(context.Background(), []string{"--server", url, "wait", "pod/web", "--for=delete", "--timeout=20s"}, Streams{In: strings.NewReader(""), Out: &out, Err: &out})
		}()
		// The pod is deleted once the wait runs (it may be before its watch).
		testutil.Eventually(t, 5*time.Second, func() error {
			if _, _, err := kybOut(url, "delete", "pod", "web"); err != nil && !api.IsNotFound(err) {
				return err
			}
			return nil
		})
		select {
		case err := <-done:
			if err != nil || out.String() != "pod/web deleted\n" {
				t.Errorf("wait --for=delete: %v, printed %q", err, out.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatal("wait --for=delete did not see the deletion")
		}
		if out, _, err := kybOut(url, "wait", "pod", "gone", "--for=delete"); err != nil || out != "pod/gone deleted\n" {
			t.Errorf("wait for a missing pod's deletion: %q %v", out, err)
		}
	})
	applyText(t, url, podYAML("slow", ""))
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"wait", "pod/slow", "--for=condition=Ready", "--timeout=50ms"}, "timed out waiting for the condition on pod/slow"},
		{[]string{"wait", "pod/nope", "--for=condition=Ready"}, `"nope" not found`},
		{[]string{"wait", "pod/slow", "--for=ready"}, "want condition=TYPE"},
		{[]string{"wait", "pod/slow"}, `"for" not set`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if _, _, err := kybOut(url, tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	t.Run("met", func(t *testing.T) {
		pod := &api.Pod{Status: api.PodStatus{Conditions: []api.PodCondition{{Type: api.PodReady, Status: api.ConditionTrue}}}}
		for _, tc := range []struct {
			spec string
			obj  api.Object
			want bool
		}{
			{"condition=Ready", pod, true},
			{"condition=ready", pod, true},
			{"condition=Ready=False", pod, false},
			{"condition=PodScheduled", pod, false},
			{"delete", pod, false},
			{"delete", nil, true},
		} {
			w, err := parseWaitFor(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := w.met(tc.obj); err != nil || got != tc.want {
				t.Errorf("%s on %v: %v %v, want %v", tc.spec, tc.obj != nil, got, err, tc.want)
			}
		}
	})
	t.Run("api-resources", func(t *testing.T) {
		out, _, err := kybOut(url, "api-resources")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^NAME +SHORTNAMES +APIVERSION +NAMESPACED +KIND\n`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^pods +po +v1 +true +Pod$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^nodes +no +v1 +false +Node$`).MatchString(out) {
			t.Errorf("api-resources printed\n%s", out)
		}
		out, _, _ = kybOut(url, "api-resources", "--namespaced=false")
		if strings.Contains(out, "Pod") || !strings.Contains(out, "Node") {
			t.Errorf("--namespaced=false printed\n%s", out)
		}
	})
	t.Run("version --client", func(t *testing.T) {
		if out, _, err := kybOut("nats://127.0.0.1:1", "version", "--client"); err != nil || out != "Client Version: "+Version+"\n" {
			t.Errorf("version --client: %q %v", out, err)
		}
	})
	t.Run("version", func(t *testing.T) {
		// The test's user may not call $SRV.INFO (users of a real cluster may).
		url := controlURL
		out, _, err := kybOut(url, "version")
		if err != nil || !strings.Contains(out, "Client Version: "+Version+"\nServer Version: v"+apiserver.Version+"\n") {
			t.Errorf("version: %q %v", out, err)
		}
		out, _, err = kybOut(url, "version", "-o", "json")
		var v versionInfo
		if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.ClientVersion.GitVersion != Version || v.ServerVersion == nil || v.ClientVersion.Platform == "" {
			t.Errorf("version -o json: %q %v", out, err)
		}
	})
}

func TestDescribeTypeName(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("web", "app: web"))
	for _, args := range [][]string{{"describe", "pod", "web"}, {"describe", "pod/web"}, {"describe", "pods/web"}} {
		if out, _, err := kybOut(url, args...); err != nil || !regexp.MustCompile(`(?m)^Name:\s+web$`).MatchString(out) {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	for _, args := range [][]string{{"describe", "pod"}, {"describe", "pod/web", "pod/db"}, {"describe", "pod", "a", "b"}} {
		if _, _, err := kybOut(url, args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

// describe covers every kind (those without a describer of their own print
// their metadata and fields) and a pod's init containers.
func TestDescribeEveryKindAndInitContainers(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {owner: me}\n---\n"+
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: init\nspec:\n  initContainers:\n  - name: setup\n    image: busybox\n    command: [sh, -c, 'echo hi']\n  containers:\n  - name: app\n    image: busybox\n")
	out, _, err := kybOut(url, "describe", "ns", "team")
	if err != nil || !regexp.MustCompile(`(?s)^Name:\s+team\nLabels:\s+owner=me\n.*Status:\n  phase: Active\n`).MatchString(out) {
		t.Errorf("describe namespace: %v\n%s", err, out)
	}
	out, _, err = kybOut(url, "describe", "pod/init")
	if err != nil || !regexp.MustCompile(`(?s)Init Containers:\n  setup:\n    Image:\s+busybox\n    Command:\s+sh -c echo hi\n.*Containers:\n  app:\n`).MatchString(out) {
		t.Errorf("describe pod with init containers: %v\n%s", err, out)
	}
}
