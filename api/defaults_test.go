package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

func TestDefaultPod(t *testing.T) {
	p := &Pod{
		ObjectMeta: ObjectMeta{Name: "web"},
		Spec: PodSpec{
			InitContainers: []Container{{Name: "init", Image: "busybox"}},
			Containers: []Container{
				{Name: "a", Image: "nginx:1.27", Ports: []ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: ProtocolUDP}},
					Resources: ResourceRequirements{Limits: ResourceList{ResourceCPU: resource.MustParse("500m"), ResourceMemory: resource.MustParse("128Mi")},
						Requests: ResourceList{ResourceCPU: resource.MustParse("100m")}}},
				{Name: "b", Image: "nginx:latest", ImagePullPolicy: PullNever},
				{Name: "c", Image: "nginx:latest"},
			},
		},
	}
	Default(p)
	if p.APIVersion != "v1" || p.Kind != "Pod" || p.Namespace != DefaultNamespace {
		t.Errorf("type/namespace = %s %s %s", p.APIVersion, p.Kind, p.Namespace)
	}
	s := p.Spec
	if s.RestartPolicy != RestartPolicyAlways || s.SchedulerName != "default-scheduler" ||
		s.TerminationGracePeriodSeconds == nil || *s.TerminationGracePeriodSeconds != 30 {
		t.Errorf("spec defaults = %s %s %v", s.RestartPolicy, s.SchedulerName, s.TerminationGracePeriodSeconds)
	}
	if p.Status.Phase != PodPending {
		t.Errorf("phase = %q", p.Status.Phase)
	}
	if got := s.InitContainers[0].ImagePullPolicy; got != PullAlways {
		t.Errorf("init pull policy = %s", got)
	}
	for i, want := range []PullPolicy{PullIfNotPresent, PullNever, PullAlways} {
		if got := s.Containers[i].ImagePullPolicy; got != want {
			t.Errorf("container %d pull policy = %s, want %s", i, got, want)
		}
	}
	if got := s.Containers[0].Ports; got[0].Protocol != ProtocolTCP || got[1].Protocol != ProtocolUDP {
		t.Errorf("protocols = %+v", got)
	}
	req := s.Containers[0].Resources.Requests
	cpu, mem := req[ResourceCPU], req[ResourceMemory]
	if cpu.String() != "100m" || mem.String() != "128Mi" {
		t.Errorf("requests = cpu %s memory %s, want 100m (kept) and 128Mi (from limit)", cpu.String(), mem.String())
	}
	// Defaulting is idempotent and keeps what is set.
	before := DeepCopy(p)
	Default(p)
	if !jsonEqual(before, p) {
		t.Error("second Default changed the pod")
	}
	if err := Validate(p); err != nil {
		t.Errorf("defaulted pod invalid: %v", err)
	}
}

func TestDefaultRequestCopyIsIndependent(t *testing.T) {
	p := &Pod{ObjectMeta: ObjectMeta{Name: "a"}, Spec: PodSpec{Containers: []Container{{Name: "a", Image: "x",
		Resources: ResourceRequirements{Limits: ResourceList{ResourceMemory: resource.MustParse("1Gi")}}}}}}
	Default(p)
	l := p.Spec.Containers[0].Resources.Limits[ResourceMemory]
	l.Add(resource.MustParse("1Gi"))
	p.Spec.Containers[0].Resources.Limits[ResourceMemory] = l
	if r := p.Spec.Containers[0].Resources.Requests[ResourceMemory]; r.String() != "1Gi" {
		t.Errorf("request followed the limit: %s", r.String())
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		wasm  bool
		want  PullPolicy
	}{
		{"nginx", false, PullAlways},
		{"nginx:latest", false, PullAlways},
		{"nginx:1.27", false, PullIfNotPresent},
		{"localhost:5000/app", false, PullAlways},
		{"localhost:5000/app:v2", false, PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef", false, PullIfNotPresent},
		{"ghcr.io/org/mod:latest", true, PullAlways},
		{"ghcr.io/org/mod:v1", true, PullIfNotPresent},
		{"file:///srv/hello.wasm", true, PullIfNotPresent},
		{"kyb://hello", true, PullIfNotPresent},
		{"kyb://hello:latest", true, PullIfNotPresent},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			if got := DefaultPullPolicy(tt.image, tt.wasm); got != tt.want {
				t.Errorf("DefaultPullPolicy(%q, wasm=%v) = %s, want %s", tt.image, tt.wasm, got, tt.want)
			}
		})
	}
	p := &Pod{ObjectMeta: ObjectMeta{Name: "w"}, Spec: PodSpec{RuntimeClassName: ptr(RuntimeWasm),
		Containers: []Container{{Name: "w", Image: "file:///srv/hello.wasm"}}}}
	Default(p)
	if got := p.Spec.Containers[0].ImagePullPolicy; got != PullIfNotPresent {
		t.Errorf("wasm file image pull policy = %s", got)
	}
}

func TestDefaultScope(t *testing.T) {
	n := &Node{ObjectMeta: ObjectMeta{Name: "n1", Namespace: "default"}}
	Default(n)
	if n.Namespace != "" || n.Kind != "Node" || n.APIVersion != "v1" {
		t.Errorf("node = %q %q %q", n.Namespace, n.Kind, n.APIVersion)
	}
	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "shop"}}
	Default(ns)
	if ns.Status.Phase != NamespaceActive || ns.Namespace != "" {
		t.Errorf("namespace = %+v", ns)
	}
	p := &Pod{TypeMeta: TypeMeta{APIVersion: "kyb/v1"}, ObjectMeta: ObjectMeta{Name: "a", Namespace: "shop"}}
	Default(p)
	if p.Namespace != "shop" || p.APIVersion != "kyb/v1" {
		t.Errorf("pod = %s %s", p.Namespace, p.APIVersion)
	}
}

// TestDefaultTolerations: a pod gets Kubernetes' 300 s tolerations of the
// not-ready and unreachable NoExecute taints unless it tolerates that
// taint already; defaulting twice adds nothing.
func TestDefaultTolerations(t *testing.T) {
	secs := func(s int64) *int64 { return &s }
	def := func(key string) Toleration {
		return Toleration{Key: key, Operator: TolerationOpExists, Effect: TaintNoExecute, TolerationSeconds: secs(300)}
	}
	own := Toleration{Key: TaintNodeUnreachable, Operator: TolerationOpExists, Effect: TaintNoExecute, TolerationSeconds: secs(5)}
	all := Toleration{Operator: TolerationOpExists}
	gpu := Toleration{Key: "gpu", Operator: TolerationOpExists, Effect: TaintNoSchedule}
	noSchedule := Toleration{Key: TaintNodeNotReady, Operator: TolerationOpExists, Effect: TaintNoSchedule}
	tests := []struct {
		name string
		in   []Toleration
		want []Toleration
	}{
		{name: "none", want: []Toleration{def(TaintNodeNotReady), def(TaintNodeUnreachable)}},
		{name: "its own unreachable toleration kept", in: []Toleration{own}, want: []Toleration{own, def(TaintNodeNotReady)}},
		{name: "tolerates everything", in: []Toleration{all}, want: []Toleration{all}},
		{name: "other tolerations kept", in: []Toleration{gpu}, want: []Toleration{gpu, def(TaintNodeNotReady), def(TaintNodeUnreachable)}},
		{name: "a NoSchedule toleration is not a NoExecute one", in: []Toleration{noSchedule},
			want: []Toleration{noSchedule, def(TaintNodeNotReady), def(TaintNodeUnreachable)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pod{ObjectMeta: ObjectMeta{Name: "web"}, Spec: PodSpec{Tolerations: tc.in, Containers: []Container{{Name: "a", Image: "nginx:1.27"}}}}
			Default(p)
			Default(p)
			if !reflect.DeepEqual(p.Spec.Tolerations, tc.want) {
				t.Fatalf("tolerations %s, want %s", dump(p.Spec.Tolerations), dump(tc.want))
			}
			if err := Validate(p); err != nil {
				t.Fatalf("defaulted pod invalid: %v", err)
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
