package node

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// BenchmarkConfigMapUpdateToFile measures how long a ConfigMap change
// takes to reach the file of a running pod's volume: the notice on
// kyb.agent.<node>.config, the fetch through the node verb, the atomic
// rewrite (..data swap). The kubelet's default is up to its sync period
// plus its cache TTL (about a minute).
//
//	go test -run '^$' -bench ConfigMapUpdateToFile ./node/
func BenchmarkConfigMapUpdateToFile(b *testing.B) {
	h := newHarness(b)
	cs := serveConfigs(b, h)
	cs.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "0"}})
	h.start()
	p := mkpod("bench", api.RestartPolicyAlways, "fake://run")
	p.Spec.Volumes = []api.Volume{{Name: "conf", ConfigMap: &api.ConfigMapVolumeSource{Name: "cm"}}}
	p.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "conf", MountPath: "/conf"}}
	p = h.cp.assign(p)
	h.cp.waitPhase(b, p.UID, api.PodRunning)
	file := filepath.Join(h.podDir(p.UID), "volumes", "conf", "k")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		want := strconv.Itoa(i + 1)
		cs.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": want}})
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got, _ := os.ReadFile(file); string(got) == want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("update %s not seen in 10s", want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}
