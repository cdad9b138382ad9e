package volume_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/volume"
	"github.com/kybernetes/kybernetes/control/store"
)

// BenchmarkProvisionClaims times the binder making and binding a local
// volume for each of 100 claims of the local class whose node the
// scheduler selected: from the claims' writes to the last one Bound.
//
//	go test -run '^$' -bench ProvisionClaims ./control/controllers/volume
func BenchmarkProvisionClaims(b *testing.B) {
	const n = 100
	ctx, st := frameworktest.OpenStore(b)
	frameworktest.Run(b, st, nil, func(mgr *framework.Manager) {
		mgr.Add("persistentvolume", volume.New(mgr, st, volume.Config{Workers: 4}, slog.New(slog.DiscardHandler)))
	})
	sc := api.LocalStorageClass()
	if err := st.Create(ctx, sc); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		ch, err := st.Watch(ctx, pvcKind, 0)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for j := range n {
			c := claim(fmt.Sprintf("c-%d-%d", i, j), api.LocalStorageClassName, "1Gi")
			c.Annotations = map[string]string{api.AnnotationSelectedNode: "n1"}
			api.Default(c)
			if err := st.Create(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		bound := map[string]bool{}
		for ev := range ch {
			if c, ok := ev.Object.(*api.PersistentVolumeClaim); ok && ev.Type != store.Deleted && c.Status.Phase == api.ClaimBound &&
				strings.HasPrefix(c.Name, fmt.Sprintf("c-%d-", i)) {
				bound[c.Name] = true
				if len(bound) == n {
					break
				}
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/100claims")
	}
}
