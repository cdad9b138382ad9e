package endpointslice_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

// BenchmarkReadinessToSlice measures the time from a pod's readiness
// change (its status write) to the write of the EndpointSlice that shows
// it, seen by a store watch, behind a Service of 100 pods: the control
// plane's part of "an endpoint that stops being Ready gets no new
// connections". Run: go test -run '^$' -bench ReadinessToSlice ./control/controllers/endpointslice/
func BenchmarkReadinessToSlice(b *testing.B) {
	ctx, st := start(b)
	create(b, ctx, st, node("n1", "192.168.1.1", true))
	create(b, ctx, st, service("web"))
	const pods = 100
	for i := range pods {
		create(b, ctx, st, pod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.42.0.%d", i+1), "n1", true))
	}
	ch, err := st.Watch(ctx, sliceKind, 0)
	if err != nil {
		b.Fatal(err)
	}
	// readyOf waits for a slice write that shows pod p's readiness as want.
	readyOf := func(p string, want bool) {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-ch:
				if ev.Type == store.Synced || ev.Object == nil {
					continue
				}
				for _, ep := range ev.Object.(*api.EndpointSlice).Endpoints {
					if ep.TargetRef != nil && ep.TargetRef.Name == p && isTrue(ep.Conditions.Ready) == want {
						return
					}
				}
			case <-deadline:
				b.Fatalf("no slice showed %s ready=%v", p, want)
			}
		}
	}
	readyOf("p099", true)
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		p := fmt.Sprintf("p%03d", i%pods)
		obj, err := st.Get(ctx, podKind, "default", p)
		if err != nil {
			b.Fatal(err)
		}
		pd := obj.(*api.Pod)
		ready := !podIsReady(pd)
		s := api.ConditionFalse
		if ready {
			s = api.ConditionTrue
		}
		pd.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: s})
		t0 := time.Now()
		if err := st.Update(ctx, pd); err != nil {
			b.Fatal(err)
		}
		readyOf(p, ready)
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/change")
}

func podIsReady(p *api.Pod) bool {
	c := p.Status.Condition(api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}
