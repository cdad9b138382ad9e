package apiserver_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func (e *env) usage(t testing.TB, p principal, node string, r api.NodeUsageReport) error {
	t.Helper()
	_, err := e.reqJSON(t, p, api.NodeSubject(node, api.NodeVerbUsage), r)
	return err
}

func (e *env) top(t testing.TB, p principal, r api.TopRequest) (*api.TopReply, error) {
	t.Helper()
	b, err := e.reqJSON(t, p, api.SubjectTop, r)
	if err != nil {
		return nil, err
	}
	var reply api.TopReply
	if err := json.Unmarshal(b, &reply); err != nil {
		t.Fatalf("decode TopReply %s: %v", b, err)
	}
	return &reply, nil
}

// TestTopUsage: a node's usage report is kept for the pods bound to it (not
// for another node's pod), `top` answers pods and nodes with their last
// sample and, when asked, the series; a user needs get/list on
// metrics.k8s.io, which view grants.
func TestTopUsage(t *testing.T) {
	e := newEnv(t)
	e.registerNode(t, "n1", nil)
	e.registerNode(t, "n2", nil)
	e.apply(t, podYAML("", "web", map[string]string{"app": "web"}))
	e.apply(t, podYAML("", "db", nil))
	e.apply(t, podYAML("", "theirs", nil))
	web := e.bind(t, "default", "web", "n1")
	db := e.bind(t, "default", "db", "n1")
	theirs := e.bind(t, "default", "theirs", "n2")
	report := api.NodeUsageReport{Time: time.Now(), Window: api.Duration{Duration: 10 * time.Second}, CPUNanoCores: 500e6, MemoryBytes: 1 << 30,
		Pods: []api.PodUsage{
			{Namespace: "default", Name: "web", UID: web.UID, Runtime: "wasm", Containers: []api.ContainerUsage{
				{Name: "a", CPUNanoCores: 2e6, MemoryBytes: 3 << 20, Instances: 2}, {Name: "b", CPUNanoCores: 1e6, MemoryBytes: 1 << 20}}},
			{Namespace: "default", Name: "db", UID: db.UID, Containers: []api.ContainerUsage{{Name: "c", MemoryBytes: 5 << 20}}},
			// n1 may not speak for a pod of n2.
			{Namespace: "default", Name: "theirs", UID: theirs.UID, Containers: []api.ContainerUsage{{Name: "c", MemoryBytes: 1 << 40}}},
		}}
	// The cache learns the bindings through the watch; retry until it has.
	testutil.Eventually(t, 5*time.Second, func() error {
		if err := e.usage(t, nodeP("n1"), "n1", report); err != nil {
			return err
		}
		r, err := e.top(t, userP("admin", "system:masters"), api.TopRequest{Kind: "pods"})
		if err != nil {
			return err
		}
		if len(r.Pods) != 2 {
			return fmt.Errorf("pods %+v, want db and web", r.Pods)
		}
		return nil
	})
	admin := userP("admin", "system:masters")
	r, err := e.top(t, admin, api.TopRequest{Kind: "pods", Name: "web", Series: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Pods) != 1 || r.Pods[0].Usage.CPUNanoCores != 3e6 || r.Pods[0].Usage.MemoryBytes != 4<<20 ||
		len(r.Pods[0].Containers) != 2 || r.Pods[0].Containers[0].Instances != 2 || r.Pods[0].Node != "n1" || len(r.Pods[0].Series) == 0 {
		t.Fatalf("top pod web: %+v", r.Pods)
	}
	if _, err := e.top(t, admin, api.TopRequest{Kind: "pods", Name: "theirs"}); err == nil {
		t.Fatal("n1's report about n2's pod was kept")
	} else {
		wantCode(t, "top of a pod with no sample", err, 404)
	}
	r, err = e.top(t, admin, api.TopRequest{Kind: "pods", LabelSelector: "app=web"})
	if err != nil || len(r.Pods) != 1 || r.Pods[0].Name != "web" {
		t.Fatalf("top -l app=web: %+v %v", r, err)
	}
	r, err = e.top(t, admin, api.TopRequest{Kind: "nodes"})
	if err != nil || len(r.Nodes) != 1 || r.Nodes[0].Name != "n1" || r.Nodes[0].Usage.CPUNanoCores != 500e6 {
		t.Fatalf("top nodes: %+v %v", r, err)
	}

	// RBAC: nothing without a binding; view grants pods in its namespace.
	bob := userP("bob")
	_, err = e.top(t, bob, api.TopRequest{Kind: "pods"})
	wantCode(t, "top pods without rights", err, 403, "metrics.k8s.io")
	_, err = e.top(t, bob, api.TopRequest{Kind: "nodes"})
	wantCode(t, "top nodes without rights", err, 403)
	e.grantEventually(t, roleBindingYAML("default", "bob-view", "ClusterRole", "view", "bob"), func() error {
		_, err := e.top(t, bob, api.TopRequest{Kind: "pods"})
		return err
	})
	_, err = e.top(t, bob, api.TopRequest{Kind: "pods", AllNamespaces: true})
	wantCode(t, "top pods -A with a namespaced binding", err, 403)

	// Another node cannot report for n1, a user not at all.
	wantCode(t, "n2 reports for n1", e.usage(t, nodeP("n2"), "n1", report), 403)
	wantCode(t, "a user reports usage", e.usage(t, bob, "n1", report), 403)
}

// TestTopBadInput: every malformed report or request is a 400 naming the
// field, and stores nothing.
func TestTopBadInput(t *testing.T) {
	e := newEnv(t)
	e.registerNode(t, "n1", nil)
	long := strings.Repeat("x", 4096)
	pod := func(ns, name, ctr string) api.NodeUsageReport {
		return api.NodeUsageReport{Pods: []api.PodUsage{{Namespace: ns, Name: name, Containers: []api.ContainerUsage{{Name: ctr}}}}}
	}
	reports := []struct {
		name  string
		r     api.NodeUsageReport
		field string
	}{
		{"4 KB pod name", pod("default", long, "c"), "pods[0].name"},
		{"bad namespace", pod("Default!", "p", "c"), "pods[0].namespace"},
		{"bad container", pod("default", "p", "a.b"), "pods[0].containers[0].name"},
		{"negative window", api.NodeUsageReport{Window: api.Duration{Duration: -time.Second}}, "window"},
		{"too many pods", api.NodeUsageReport{Pods: make([]api.PodUsage, api.MaxUsagePods+1)}, "pods"},
	}
	for _, tt := range reports {
		t.Run(tt.name, func(t *testing.T) {
			err := e.usage(t, nodeP("n1"), "n1", tt.r)
			wantCode(t, tt.name, err, 400, tt.field)
		})
	}
	t.Run("4 KB node name", func(t *testing.T) {
		code, st := rawRequest(t, e.nc, api.NodeSubject(long[:4000], api.NodeVerbUsage), []byte(`{}`))
		if code != 400 {
			t.Fatalf("code %d (%v), want 400", code, st)
		}
	})
	admin := userP("admin", "system:masters")
	requests := []struct {
		name  string
		r     api.TopRequest
		field string
	}{
		{"kind", api.TopRequest{Kind: "deployments"}, "kind"},
		{"4 KB name", api.TopRequest{Kind: "pods", Name: long}, "name"},
		{"namespace", api.TopRequest{Kind: "pods", Namespace: "A_B"}, "namespace"},
		{"selector", api.TopRequest{Kind: "pods", LabelSelector: "a in ("}, "labelSelector"},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.top(t, admin, tt.r)
			wantCode(t, tt.name, err, 400, tt.field)
		})
	}
	r, err := e.top(t, admin, api.TopRequest{Kind: "nodes"})
	if err != nil || len(r.Nodes) != 0 {
		t.Fatalf("a refused report stored something: %+v %v", r, err)
	}
}

// TestUsageSharedByAPIServers: two API servers serve one cluster; the
// service's queue group hands each report to one of them, yet every top,
// whichever server answers it, shows every sample (before the servers
// shared reports, each held about half of the history).
func TestUsageSharedByAPIServers(t *testing.T) {
	s := testutil.StartNATS(t)
	e := newEnvOn(t, s, apiserver.Config{})
	newEnvOn(t, s, apiserver.Config{})
	e.registerNode(t, "n1", nil)
	e.apply(t, podYAML("", "web", nil))
	web := e.bind(t, "default", "web", "n1")
	const reports = 12
	admin := userP("admin", "system:masters")
	report := func(i int) api.NodeUsageReport {
		return api.NodeUsageReport{Time: time.Now(), Window: api.Duration{Duration: 10 * time.Second},
			Pods: []api.PodUsage{{Namespace: "default", Name: "web", UID: web.UID, Containers: []api.ContainerUsage{{Name: "c", CPUNanoCores: uint64(i+1) * 1e6}}}}}
	}
	// Both servers' caches know the binding before the reports count: a
	// top of web answered by either has its sample.
	testutil.Eventually(t, 10*time.Second, func() error {
		if err := e.usage(t, nodeP("n1"), "n1", report(0)); err != nil {
			return err
		}
		for range 16 {
			if _, err := e.top(t, admin, api.TopRequest{Kind: "pods", Name: "web"}); err != nil {
				return err
			}
		}
		return nil
	})
	for i := 1; i < reports; i++ {
		if err := e.usage(t, nodeP("n1"), "n1", report(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every answer, from either server, has the whole series and the
	// last sample (the sharing is asynchronous: wait for it once).
	testutil.Eventually(t, 10*time.Second, func() error {
		var lens []int
		for range 24 {
			r, err := e.top(t, admin, api.TopRequest{Kind: "pods", Name: "web", Series: true})
			if err != nil {
				return err
			}
			if len(r.Pods) != 1 {
				return fmt.Errorf("top web: %+v", r.Pods)
			}
			lens = append(lens, len(r.Pods[0].Series))
			if n := len(r.Pods[0].Series); n < reports || r.Pods[0].Usage.CPUNanoCores != reports*1e6 {
				return fmt.Errorf("a server answered with %d samples, last CPU %d (want ≥ %d, %d); series lengths so far %v",
					n, r.Pods[0].Usage.CPUNanoCores, reports, uint64(reports*1e6), lens)
			}
		}
		return nil
	})
}
