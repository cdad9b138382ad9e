package controlplane_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

// BenchmarkConsistentReads compares, in one run, a get and a list (100
// ConfigMaps of a namespace) served from the cache as it is
// (resourceVersion "0": what every list was before consistent reads) with
// the consistent read (resourceVersion "": learn the objects stream's last
// revision from its leader, wait for the cache), on one server and
// through a server of a 3-server cluster (R3), over TLS as the admin.
// Reports p50 and p99 of 300 sequential reads. Run with -benchtime 1x.
func BenchmarkConsistentReads(b *testing.B) {
	for _, shape := range []string{"single", "cluster3"} {
		b.Run(shape, func(b *testing.B) {
			var cps []*controlplane.ControlPlane
			if shape == "single" {
				m := newMember(b, "kyb-single")
				wait(b, "single", startMember(b, m, func(c *controlplane.Config) { c.ClusterListen = "" }))
				b.Cleanup(func() { stopMember(m) })
				cps = append(cps, m.cp)
			} else {
				for _, m := range startCluster(b) {
					cps = append(cps, m.cp)
				}
			}
			ctx := context.Background()
			writer := adminClient(b, cps[0])
			for i := range 100 {
				if _, err := writer.Apply(ctx, fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%d","namespace":"default"},"data":{"k":"v"}}`, i)); err != nil {
					b.Fatal(err)
				}
			}
			reader := adminClient(b, cps[len(cps)-1])
			for _, tc := range []struct {
				name string
				read func(rv string) error
			}{
				{"get", func(rv string) error {
					_, err := reader.GetWith(ctx, api.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: "cm-7", ResourceVersion: rv})
					return err
				}},
				{"list", func(rv string) error {
					objs, _, err := reader.ListRaw(ctx, api.ListRequest{Kind: "ConfigMap", Namespace: "default", ResourceVersion: rv})
					if err == nil && len(objs) != 100 {
						err = fmt.Errorf("%d items", len(objs))
					}
					return err
				}},
			} {
				for _, mode := range []struct{ name, rv string }{{"cached", api.ResourceVersionAny}, {"consistent", ""}} {
					b.Run(tc.name+"/"+mode.name, func(b *testing.B) {
						for range b.N {
							const n = 300
							lat := make([]time.Duration, 0, n)
							for range n {
								t0 := time.Now()
								if err := tc.read(mode.rv); err != nil {
									b.Fatal(err)
								}
								lat = append(lat, time.Since(t0))
							}
							slices.Sort(lat)
							b.ReportMetric(float64(lat[n/2].Microseconds()), "p50-µs")
							b.ReportMetric(float64(lat[n*99/100].Microseconds()), "p99-µs")
						}
					})
				}
			}
		})
	}
}
