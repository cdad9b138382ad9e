package dashboard_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkDashboard measures apply → visible in the browser: the time
// from the apply request to the pod's row appearing in chromium's DOM on
// the pods page (recorded in the page by a MutationObserver, so the
// test's polling does not count), for 50 pods applied one after another
// while an agent runs them (their status changes re-render the page too).
// Run: go test -run '^$' -bench Dashboard -benchtime 1x ./control/dashboard
func BenchmarkDashboard(b *testing.B) {
	chromium(b)
	c := startCluster(b, true)
	ctx := newChrome(b)
	signIn(b, ctx, c.url, adminCreds(b, c.cp), "")
	c.apply(b, namespaceYAML("bench"))
	do(b, ctx, "open the pods", chromedp.Navigate(c.url+"pods?ns=bench"), chromedp.WaitVisible(chromedp.CSS(`table.pods`)))
	waitJS(b, ctx, "live stream open", `document.body.hasAttribute('data-rendered')`)
	eval[int](b, ctx, `window.kybSeen = {};
		new MutationObserver(() => {
			const now = performance.timeOrigin + performance.now();
			for (const tr of document.querySelectorAll('tr[data-pod]')) {
				if (!(tr.dataset.pod in kybSeen)) kybSeen[tr.dataset.pod] = now;
			}
		}).observe(document.getElementById('live'), {childList: true, subtree: true}); 0`)
	const pods = 50
	var lat []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < pods; j++ {
			name := fmt.Sprintf("p-%d-%d", i, j)
			start := float64(time.Now().UnixNano()) / 1e6
			c.apply(b, podYAML("bench", name, "fake://run"))
			key := "bench/" + name
			waitJS(b, ctx, "row "+key, `'`+key+`' in kybSeen`)
			seen := eval[float64](b, ctx, `kybSeen['`+key+`']`)
			lat = append(lat, seen-start)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.Logf("apply → visible over %d pods: p50 %.1f ms, p99 %.1f ms, min %.1f ms, max %.1f ms", len(lat), q(0.5), q(0.99), lat[0], lat[len(lat)-1])
}
