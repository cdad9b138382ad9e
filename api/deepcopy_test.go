package api

import (
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

func TestDeepCopy(t *testing.T) {
	p := validPod()
	p.CreationTimestamp = time.Now()
	p.Spec.RuntimeClassName = ptr(RuntimeWasm)
	p.Annotations = map[string]string{}
	p.Status.StartTime = ptr(time.Now())
	p.Status.ContainerStatuses = []ContainerStatus{{Name: "web", State: ContainerState{Running: &ContainerStateRunning{StartedAt: time.Now()}}}}
	c := DeepCopy(p)
	if c == p {
		t.Fatal("DeepCopy returned the same pointer")
	}
	if !reflect.DeepEqual(p, c) {
		t.Fatalf("copy differs:\n%+v\n%+v", p, c)
	}
	// Change every kind of reference in the copy; the original must not move.
	c.Labels["app"] = "changed"
	c.Spec.Containers[0].Image = "changed"
	c.Spec.Containers[0].Ports[0].ContainerPort = 1
	c.Spec.Containers[0].Env[0].Value = "changed"
	*c.Spec.RuntimeClassName = "changed"
	*c.Spec.TerminationGracePeriodSeconds = 99
	c.Spec.NodeSelector["disk"] = "changed"
	c.Spec.Volumes[0].EmptyDir.Medium = "Memory"
	c.Status.ContainerStatuses[0].State.Running.StartedAt = time.Time{}
	q := c.Spec.Containers[0].Resources.Limits[ResourceCPU]
	q.Add(resource.MustParse("1"))
	c.Spec.Containers[0].Resources.Limits[ResourceCPU] = q
	orig := validPod()
	if p.Labels["app"] != "web" || p.Spec.Containers[0].Image != orig.Spec.Containers[0].Image ||
		p.Spec.Containers[0].Ports[0].ContainerPort != 80 || p.Spec.Containers[0].Env[0].Value != "1" ||
		*p.Spec.RuntimeClassName != RuntimeWasm || *p.Spec.TerminationGracePeriodSeconds != 30 ||
		p.Spec.NodeSelector["disk"] != "ssd" || p.Spec.Volumes[0].EmptyDir.Medium != "" ||
		p.Status.ContainerStatuses[0].State.Running.StartedAt.IsZero() {
		t.Errorf("changing the copy changed the original: %+v", p)
	}
	if l := p.Spec.Containers[0].Resources.Limits[ResourceCPU]; l.String() != "1" {
		t.Errorf("original cpu limit = %s", l.String())
	}
	var nilPod *Pod
	if DeepCopy(nilPod) != nil {
		t.Error("DeepCopy(nil) != nil")
	}
	n := validNode()
	if cn := DeepCopy(n); !reflect.DeepEqual(n, cn) || &cn.Spec.Taints[0] == &n.Spec.Taints[0] {
		t.Error("node copy is not deep")
	}
}

func BenchmarkDeepCopyPod(b *testing.B) {
	p := validPod()
	b.ReportAllocs()
	for b.Loop() {
		_ = DeepCopy(p)
	}
}

func BenchmarkDecodePod(b *testing.B) {
	doc := []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    ports: [{containerPort: 80}]\n    resources:\n      requests: {cpu: 250m, memory: 64Mi}\n      limits: {cpu: 500m, memory: 128Mi}\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidatePod(b *testing.B) {
	p := validPod()
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(p); err != nil {
			b.Fatal(err)
		}
	}
}
