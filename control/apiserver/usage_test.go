package apiserver

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// TestUsageStoreBounded: however many reports come, a series holds at most
// its ring's points; pods that are gone from their node lose their series,
// and so does a node that is forgotten.
func TestUsageStoreBounded(t *testing.T) {
	const points = 10
	u := newUsageStore(points, time.Hour)
	bound := map[string]bool{}
	isBound := func(ns, name, uid string) bool { return bound[ns+"/"+name] }
	pods := func(n int) []api.PodUsage {
		var ps []api.PodUsage
		for i := range n {
			ps = append(ps, api.PodUsage{Namespace: "default", Name: fmt.Sprintf("p%d", i), Containers: []api.ContainerUsage{{Name: "c", MemoryBytes: uint64(i)}}})
		}
		return ps
	}
	for i := range 5 {
		bound[fmt.Sprintf("default/p%d", i)] = true
	}
	t0 := time.Now()
	for i := range 1000 {
		u.record("n1", &api.NodeUsageReport{Pods: pods(5)}, t0.Add(time.Duration(i)*time.Second), isBound)
	}
	series, pts := u.size()
	if series != 6 || pts != 6*points {
		t.Fatalf("after 1000 reports: %d series, %d points; want 6 and %d", series, pts, 6*points)
	}
	// The ring keeps the newest points, oldest first.
	got := u.pods["default/p1"].ring.since(time.Time{})
	if len(got) != points || !got[0].Time.Equal(t0.Add(990*time.Second)) || !got[points-1].Time.Equal(t0.Add(999*time.Second)) {
		t.Fatalf("ring holds %d points from %v to %v", len(got), got[0].Time, got[len(got)-1].Time)
	}
	// A pod not bound (any more) is not stored, and its series goes.
	delete(bound, "default/p4")
	rejected := u.record("n1", &api.NodeUsageReport{Pods: pods(5)}, t0.Add(2000*time.Second), isBound)
	if rejected != 1 {
		t.Fatalf("rejected %d, want 1", rejected)
	}
	u.record("n1", &api.NodeUsageReport{Pods: pods(3)}, t0.Add(2001*time.Second), isBound)
	if _, ok := u.pods["default/p4"]; ok {
		t.Fatal("an unbound pod kept its series")
	}
	if _, ok := u.pods["default/p3"]; !ok {
		t.Fatal("a bound pod left out of one report lost its series")
	}
	u.forgetNode("n1")
	if series, pts := u.size(); series != 0 || pts != 0 {
		t.Fatalf("after forgetting the node: %d series, %d points", series, pts)
	}
}

// TestUsageStoreLateReport: a report older than the last one recorded (one
// another API server passed on late) joins the series in its place and
// does not become the current usage.
func TestUsageStoreLateReport(t *testing.T) {
	u := newUsageStore(10, time.Hour)
	all := func(string, string, string) bool { return true }
	report := func(cpu uint64) *api.NodeUsageReport {
		return &api.NodeUsageReport{CPUNanoCores: cpu, Pods: []api.PodUsage{{Namespace: "default", Name: "p", Containers: []api.ContainerUsage{{Name: "c", CPUNanoCores: cpu}}}}}
	}
	t0 := time.Now()
	u.record("n1", report(1), t0, all)
	u.record("n1", report(3), t0.Add(2*time.Second), all)
	u.record("n1", report(2), t0.Add(time.Second), all) // late
	if n, p := u.nodes["n1"].last.CPUNanoCores, u.pods["default/p"].last.CPUNanoCores; n != 3 || p != 3 {
		t.Fatalf("current usage after a late report: node %d, pod %d; want 3 and 3", n, p)
	}
	var cpus []uint64
	for _, pt := range u.pods["default/p"].ring.since(time.Time{}) {
		cpus = append(cpus, pt.CPUNanoCores)
	}
	if fmt.Sprint(cpus) != "[1 2 3]" {
		t.Fatalf("series %v; want [1 2 3], in time order", cpus)
	}
}
