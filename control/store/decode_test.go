package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
)

// TestDecodeMatchesEncodingJSON checks that the fast decoder reads stored
// objects exactly as encoding/json does.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 123, time.UTC)
	full := benchPod("default", "web.v1")
	full.UID = "u-1"
	full.Generation = 3
	full.CreationTimestamp = now
	full.DeletionTimestamp = &now
	tru := true
	full.OwnerReferences = []api.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u-2", Controller: &tru}}
	full.Spec.Tolerations = []api.Toleration{{Key: "k", Operator: api.TolerationOpExists}}
	full.Spec.Volumes = []api.Volume{{Name: "v", EmptyDir: &api.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("1Gi"))}}}
	full.Status = api.PodStatus{Phase: api.PodRunning, StartTime: &now, PodIPs: []api.PodIP{{IP: "10.0.0.1"}},
		Conditions:        []api.PodCondition{{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: now}},
		ContainerStatuses: []api.ContainerStatus{{Name: "web", Ready: true, State: api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: now}}}}}
	fullJSON, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	node := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}, Status: api.NodeStatus{
		Capacity: api.ResourceList{api.ResourceCPU: resource.MustParse("2"), api.ResourceWasmPods: resource.MustParse("1k")},
		NodeInfo: api.NodeSystemInfo{Runtimes: []api.NodeRuntime{{Name: "wasm", Version: "1.12"}}}}}
	nodeJSON, err := json.Marshal(node)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		kind *api.Kind
		data string
	}{
		{"full pod", podKind, string(fullJSON)},
		{"node", nodeKind, string(nodeJSON)},
		{"unknown fields and nulls", podKind, `{"kind":"Pod","extra":{"a":[1,2]},"metadata":{"name":"x","labels":null,"foo":1},"spec":{"containers":null,"nodeName":"n"},"status":null}`},
		// Not covered: encoding/json also matches keys case-insensitively
		// ("Metadata"); goccy does not for embedded structs. The store only
		// reads values it wrote itself, with exact keys.
		{"escapes", podKind, `{"metadata":{"name":"x","annotations":{"a":"\u00e9\n\"q\"\\"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.kind.New()
			if err := json.Unmarshal([]byte(tc.data), want); err != nil {
				t.Fatal(err)
			}
			want.GetObjectMeta().ResourceVersion = "7"
			got, err := (&Store{}).decode(tc.kind, []byte(tc.data), 7)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Fatalf("decode differs from encoding/json:\n got %s\nwant %s", g, w)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
