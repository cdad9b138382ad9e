package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/metrics"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// scrape reads /metrics at addr and parses it with Prometheus' text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// hasSeries reports whether family has a series with all the labels.
func hasSeries(f *dto.MetricFamily, labels map[string]string) bool {
	if f == nil {
		return false
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return true
	}
	return false
}

// TestMetricsAndTop: after API calls, a scheduled wasm pod, a WAGI request
// and a few usage samples, /metrics parses and carries every family kyb
// exports, and `kyb top` shows the pods' and the node's usage.
func TestMetricsAndTop(t *testing.T) {
	c := startCluster(t)
	c.statsInterval = 200 * time.Millisecond
	prog := precompiled(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"))
	c.kyb("module", "push", "prog", prog)
	web := precompiled(t, runtimetest.BuildGo(t, "./examples/http-wasm", "wasip1", "wasm"))
	c.kyb("module", "push", "http", web)
	dir := t.TempDir()
	c.startAgent("wasm-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: c.wasmRuntime("wasm-1", dir)})

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := metrics.Serve(ctx, metrics.Options{Addr: "127.0.0.1:0"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}

	c.apply(wasmPod("hog", "kyb://prog", "Always", "alloc", "16", "sleep", "forever"))
	port := freePort(t)
	c.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  runtimeClassName: wasm
  containers:
  - name: web
    image: kyb://http
    ports:
    - containerPort: 8080
      hostPort: %d
`, port))
	c.waitPod("hog", 60*time.Second, phaseIs(api.PodRunning))
	c.waitPod("web", 60*time.Second, phaseIs(api.PodRunning))
	testutil.Eventually(t, 30*time.Second, func() error {
		resp, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/greet?name=metrics", port))
		if err != nil {
			return err
		}
		if resp != 200 {
			return fmt.Errorf("status %d", resp)
		}
		return nil
	})

	// kyb top pods: the wasm pod's linear memory (16 MiB allocated).
	testutil.Eventually(t, 20*time.Second, func() error {
		out, _, err := c.kybErr("top", "pods")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "hog" && strings.HasSuffix(f[2], "Mi") {
				if mi, _ := strconv.Atoi(strings.TrimSuffix(f[2], "Mi")); mi >= 16 {
					return nil
				}
			}
		}
		return fmt.Errorf("kyb top pods shows no 16Mi for hog:\n%s", out)
	})
	out := c.kyb("top", "pods", "--containers", "-A")
	if !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "POD") || !strings.Contains(out, "hog") || !strings.Contains(out, "main") {
		t.Errorf("kyb top pods --containers -A:\n%s", out)
	}
	out = c.kyb("top", "nodes")
	if !strings.Contains(out, "CPU(%)") || !strings.Contains(out, "wasm-1") {
		t.Errorf("kyb top nodes:\n%s", out)
	}
	if _, errOut, err := c.kybErr("top", "pods", "--sort-by", "size"); err == nil {
		t.Errorf("--sort-by size accepted (%s)", errOut)
	}
	// The series the dashboard plots.
	r, err := c.c.Top(context.Background(), api.TopRequest{Kind: "pods", Name: "hog", Series: true})
	if err != nil || len(r.Pods) != 1 || len(r.Pods[0].Series) == 0 {
		t.Fatalf("top series of hog: %+v %v", r, err)
	}

	// A user with no rights gets the 403, not numbers.
	nobody, err := client.CreateUser(context.Background(), c.c, "nobody", c.url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"pods", "nodes"} {
		out, _, err := c.kybErr("--config", nobody, "top", what)
		if err == nil || !api.IsForbidden(err) || !strings.Contains(err.Error(), "cannot list") || !strings.Contains(err.Error(), "metrics.k8s.io") || strings.Contains(out, "hog") {
			t.Errorf("kyb top %s as a user without rights: %v\n%s", what, err, out)
		}
	}

	fams := scrape(t, addr.String())
	for name, labels := range map[string]map[string]string{
		"kyb_apiserver_request_duration_seconds": {"verb": "apply", "code": "200"},
		"kyb_scheduler_schedule_attempts_total":  {"result": "scheduled"},
		"kyb_scheduler_pods_bound_total":         nil,
		"kyb_scheduler_pending_pods":             {"queue": "active"},
		"kyb_store_operation_duration_seconds":   {"operation": "create"},
		"kyb_node_pod_start_duration_seconds":    {"runtime": "wasm"},
		"kyb_wagi_requests_total":                {"namespace": "default", "pod": "web", "code": "200"},
		"kyb_apiserver_usage_reports_total":      {"result": "stored"},
		"go_goroutines":                          nil,
		"process_cpu_seconds_total":              nil,
	} {
		if !hasSeries(fams[name], labels) {
			t.Errorf("/metrics has no %s%v", name, labels)
		}
	}
	if f := fams["kyb_apiserver_request_duration_seconds"]; f != nil && f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("request duration is a %v, want a histogram", f.GetType())
	}

	// A deleted WAGI pod takes its series with it (bounded cardinality).
	c.kyb("delete", "pod", "web")
	testutil.Eventually(t, 20*time.Second, func() error {
		if hasSeries(scrape(t, addr.String())["kyb_wagi_requests_total"], map[string]string{"pod": "web"}) {
			return fmt.Errorf("the deleted pod's WAGI series remain")
		}
		return nil
	})
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestTopContainer: `kyb top pods` shows a container's working set, read
// from its cgroup (a real containerd; skipped without one unless CI=true).
func TestTopContainer(t *testing.T) {
	c := startCluster(t)
	c.statsInterval = 200 * time.Millisecond
	dir := t.TempDir()
	cr := containerdRuntime(t, dir)
	image := progImage(t)
	c.startAgent("box-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeContainerd: cr})
	c.apply(containerPod("box", image, "Always", "", "alloc", "24", "sleep", "forever"))
	c.waitPod("box", 120*time.Second, phaseIs(api.PodRunning))
	testutil.Eventually(t, 30*time.Second, func() error {
		out, _, err := c.kybErr("top", "pods", "--containers")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[0] == "box" && strings.HasSuffix(f[3], "Mi") {
				if mi, _ := strconv.Atoi(strings.TrimSuffix(f[3], "Mi")); mi >= 24 {
					return nil
				}
			}
		}
		return fmt.Errorf("kyb top pods --containers shows no 24Mi for box:\n%s", out)
	})
}
