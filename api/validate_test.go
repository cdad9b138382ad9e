package api

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// validPod returns a defaulted pod that passes validation.
func validPod() *Pod {
	p := &Pod{
		ObjectMeta: ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: PodSpec{
			Containers: []Container{{
				Name:  "web",
				Image: "nginx:1.27",
				Ports: []ContainerPort{{Name: "http", ContainerPort: 80}},
				Resources: ResourceRequirements{
					Requests: ResourceList{ResourceCPU: resource.MustParse("250m"), ResourceMemory: resource.MustParse("64Mi")},
					Limits:   ResourceList{ResourceCPU: resource.MustParse("1"), ResourceMemory: resource.MustParse("128Mi")},
				},
				VolumeMounts: []VolumeMount{{Name: "data", MountPath: "/data"}},
				Env:          []EnvVar{{Name: "A", Value: "1"}},
			}},
			Volumes:      []Volume{{Name: "data", EmptyDir: &EmptyDirVolumeSource{}}},
			NodeSelector: map[string]string{"disk": "ssd"},
			Tolerations:  []Toleration{{Key: "gpu", Operator: TolerationOpExists, Effect: TaintNoSchedule}},
		},
	}
	Default(p)
	return p
}

func validNode() *Node {
	n := &Node{ObjectMeta: ObjectMeta{Name: "node-1"},
		Spec: NodeSpec{Taints: []Taint{{Key: "gpu", Value: "true", Effect: TaintNoSchedule}}}}
	Default(n)
	return n
}

func ptr[T any](v T) *T { return &v }

// causeFor returns the message of the cause for field, or "" and false.
func causeFor(st *Status, fld string) (string, bool) {
	for _, c := range st.Causes {
		if c.Field == fld {
			return c.Message, true
		}
	}
	return "", false
}

func asInvalid(t *testing.T, err error) *Status {
	t.Helper()
	var st *Status
	if !errors.As(err, &st) {
		t.Fatalf("error %v (%T) is not a *Status", err, err)
	}
	if st.Code != 422 || st.Reason != ReasonInvalid {
		t.Fatalf("status %d %s, want 422 Invalid", st.Code, st.Reason)
	}
	return st
}

func TestValidateValid(t *testing.T) {
	for _, o := range []Object{validPod(), validNode(), &Namespace{ObjectMeta: ObjectMeta{Name: "shop"}}} {
		Default(o)
		if err := Validate(o); err != nil {
			t.Errorf("%T: %v", o, err)
		}
	}
	// An undefaulted pod is valid as well.
	p := &Pod{ObjectMeta: ObjectMeta{Name: "a"}, Spec: PodSpec{Containers: []Container{{Name: "a", Image: "x"}}}}
	if err := Validate(p); err != nil {
		t.Errorf("undefaulted pod: %v", err)
	}
}

func TestValidatePod(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name   string
		mutate func(p *Pod)
		field  string
		msg    string // substring of the cause's message
	}{
		{"name required", func(p *Pod) { p.Name = "" }, "metadata.name", "required"},
		{"name uppercase", func(p *Pod) { p.Name = "Web" }, "metadata.name", "RFC 1123 label"},
		{"name too long", func(p *Pod) { p.Name = long }, "metadata.name", "no more than 63 characters"},
		{"name with dot", func(p *Pod) { p.Name = "a.b" }, "metadata.name", "must not contain dots"},
		{"generateName invalid", func(p *Pod) { p.Name = ""; p.GenerateName = "Web-" }, "metadata.generateName", "RFC 1123"},
		{"namespace invalid", func(p *Pod) { p.Namespace = "My_NS" }, "metadata.namespace", "RFC 1123 label"},
		{"label key invalid", func(p *Pod) { p.Labels["-bad"] = "x" }, "metadata.labels[-bad]", "name part must consist"},
		{"label key prefix invalid", func(p *Pod) { p.Labels["Bad_Prefix/app"] = "x" }, "metadata.labels[Bad_Prefix/app]", "prefix part"},
		{"label value invalid", func(p *Pod) { p.Labels["app"] = "has space" }, "metadata.labels[app]", `invalid value "has space"`},
		{"label value too long", func(p *Pod) { p.Labels["app"] = long }, "metadata.labels[app]", "63"},
		{"annotation key invalid", func(p *Pod) { p.Annotations = map[string]string{"a b": "x"} }, "metadata.annotations[a b]", "name part"},
		{"annotations too large", func(p *Pod) { p.Annotations = map[string]string{"big": strings.Repeat("x", 300*1024)} }, "metadata.annotations", "too long"},
		{"no containers", func(p *Pod) { p.Spec.Containers = nil }, "spec.containers", "at least one container"},
		{"container name required", func(p *Pod) { p.Spec.Containers[0].Name = "" }, "spec.containers[0].name", "required"},
		{"container name invalid", func(p *Pod) { p.Spec.Containers[0].Name = "Web_1" }, "spec.containers[0].name", "RFC 1123 label"},
		{"container name duplicate", func(p *Pod) {
			p.Spec.Containers = append(p.Spec.Containers, Container{Name: "web", Image: "x"})
		}, "spec.containers[1].name", `duplicate value "web"`},
		{"init container name duplicate", func(p *Pod) {
			p.Spec.InitContainers = []Container{{Name: "web", Image: "x"}}
		}, "spec.containers[0].name", `duplicate value "web"`},
		{"image required", func(p *Pod) { p.Spec.Containers[0].Image = "" }, "spec.containers[0].image", "required"},
		{"wasm tty", func(p *Pod) {
			p.Spec.RuntimeClassName = ptr(RuntimeWasm)
			p.Spec.Containers[0].Stdin, p.Spec.Containers[0].TTY = true, true
		}, "spec.containers[0].tty", "a WASI module has no terminal"},
		{"wasm WAGI stdin", func(p *Pod) {
			p.Spec.RuntimeClassName = ptr(RuntimeWasm)
			p.Spec.Containers[0].Stdin, p.Spec.Containers[0].Ports = true, []ContainerPort{{ContainerPort: 8080}}
		}, "spec.containers[0].stdin", "each request's body"},
		{"wasm init tty", func(p *Pod) {
			p.Spec.RuntimeClassName = ptr(RuntimeWasm)
			p.Spec.InitContainers = []Container{{Name: "init", Image: "x", TTY: true}}
		}, "spec.initContainers[0].tty", "a WASI module has no terminal"},
		{"init image required", func(p *Pod) { p.Spec.InitContainers = []Container{{Name: "init"}} }, "spec.initContainers[0].image", "required"},
		{"image whitespace", func(p *Pod) { p.Spec.Containers[0].Image = " nginx" }, "spec.containers[0].image", "whitespace"},
		{"pull policy", func(p *Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }, "spec.containers[0].imagePullPolicy", `unsupported value "Sometimes"`},
		{"hook without handler", func(p *Pod) { p.Spec.Containers[0].Lifecycle = &Lifecycle{PostStart: &LifecycleHandler{}} }, "spec.containers[0].lifecycle.postStart", "one of exec, httpGet, sleep"},
		{"hook tcpSocket", func(p *Pod) {
			p.Spec.Containers[0].Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{TCPSocket: &TCPSocketAction{Port: FromInt(80)}}}
		}, "spec.containers[0].lifecycle.preStop.tcpSocket", "not supported"},
		{"hook two handlers", func(p *Pod) {
			p.Spec.Containers[0].Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Exec: &ExecAction{Command: []string{"x"}}, Sleep: &SleepAction{Seconds: 1}}}
		}, "spec.containers[0].lifecycle.preStop", "more than one handler"},
		{"hook exec without command", func(p *Pod) {
			p.Spec.Containers[0].Lifecycle = &Lifecycle{PostStart: &LifecycleHandler{Exec: &ExecAction{}}}
		}, "spec.containers[0].lifecycle.postStart.exec.command", "required"},
		{"hook httpGet unknown port name", func(p *Pod) {
			p.Spec.Containers[0].Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{HTTPGet: &HTTPGetAction{Port: FromString("nope")}}}
		}, "spec.containers[0].lifecycle.preStop.httpGet.port", "nope"},
		{"hook sleep zero", func(p *Pod) {
			p.Spec.Containers[0].Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Sleep: &SleepAction{}}}
		}, "spec.containers[0].lifecycle.preStop.sleep.seconds", "greater than 0"},
		{"init container hook", func(p *Pod) {
			p.Spec.InitContainers = []Container{{Name: "init", Image: "x", Lifecycle: &Lifecycle{PostStart: &LifecycleHandler{Sleep: &SleepAction{Seconds: 1}}}}}
		}, "spec.initContainers[0].lifecycle", "init containers may not have lifecycle hooks"},
		{"termination message path relative", func(p *Pod) { p.Spec.Containers[0].TerminationMessagePath = "dev/log" }, "spec.containers[0].terminationMessagePath", "absolute path"},
		{"termination message path a directory", func(p *Pod) { p.Spec.Containers[0].TerminationMessagePath = "/dev/" }, "spec.containers[0].terminationMessagePath", "must name a file"},
		{"termination message policy", func(p *Pod) { p.Spec.Containers[0].TerminationMessagePolicy = "Always" }, "spec.containers[0].terminationMessagePolicy", `unsupported value "Always"`},
		{"port zero", func(p *Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 }, "spec.containers[0].ports[0].containerPort", "between 1 and 65535"},
		{"port too high", func(p *Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 }, "spec.containers[0].ports[0].containerPort", "between 1 and 65535"},
		{"hostPort negative", func(p *Pod) { p.Spec.Containers[0].Ports[0].HostPort = -1 }, "spec.containers[0].ports[0].hostPort", "between 0 and 65535"},
		{"hostPort too high", func(p *Pod) { p.Spec.Containers[0].Ports[0].HostPort = 65536 }, "spec.containers[0].ports[0].hostPort", "between 0 and 65535"},
		{"protocol", func(p *Pod) { p.Spec.Containers[0].Ports[0].Protocol = "ICMP" }, "spec.containers[0].ports[0].protocol", `supported values: "TCP", "UDP", "SCTP"`},
		{"port name duplicate", func(p *Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, ContainerPort{Name: "http", ContainerPort: 81})
		}, "spec.containers[0].ports[1].name", `duplicate value "http"`},
		{"port name invalid", func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "HTTP_PORT_TOO_LONG" }, "spec.containers[0].ports[0].name", "15"},
		{"env name empty", func(p *Pod) { p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, EnvVar{Value: "x"}) }, "spec.containers[0].env[1].name", "required"},
		{"env name with =", func(p *Pod) { p.Spec.Containers[0].Env[0].Name = "A=B" }, "spec.containers[0].env[0].name", "'='"},
		{"negative cpu request", func(p *Pod) {
			p.Spec.Containers[0].Resources.Requests[ResourceCPU] = resource.MustParse("-100m")
		}, "spec.containers[0].resources.requests.cpu", "greater than or equal to 0"},
		{"negative memory limit", func(p *Pod) {
			p.Spec.Containers[0].Resources.Limits[ResourceMemory] = resource.MustParse("-1Mi")
		}, "spec.containers[0].resources.limits.memory", "greater than or equal to 0"},
		{"memory limit below request", func(p *Pod) {
			p.Spec.Containers[0].Resources.Limits[ResourceMemory] = resource.MustParse("32Mi")
		}, "spec.containers[0].resources.limits.memory", "must be greater than or equal to request"},
		{"cpu limit below request", func(p *Pod) {
			p.Spec.Containers[0].Resources.Limits[ResourceCPU] = resource.MustParse("100m")
		}, "spec.containers[0].resources.limits.cpu", "must be greater than or equal to request (100m < 250m)"},
		{"resource name invalid", func(p *Pod) {
			p.Spec.Containers[0].Resources.Requests["bad name"] = resource.MustParse("1")
		}, "spec.containers[0].resources.requests.bad name", "name part"},
		{"restartPolicy", func(p *Pod) { p.Spec.RestartPolicy = "Sometimes" }, "spec.restartPolicy", `supported values: "Always", "OnFailure", "Never"`},
		{"runtimeClassName", func(p *Pod) { p.Spec.RuntimeClassName = ptr("gvisor") }, "spec.runtimeClassName", `unsupported value "gvisor": supported values: "", "containerd", "wasm"`},
		{"grace period negative", func(p *Pod) { p.Spec.TerminationGracePeriodSeconds = ptr(int64(-1)) }, "spec.terminationGracePeriodSeconds", "greater than or equal to 0"},
		{"nodeName invalid", func(p *Pod) { p.Spec.NodeName = "Node_1" }, "spec.nodeName", "RFC 1123"},
		{"nodeSelector key", func(p *Pod) { p.Spec.NodeSelector["bad key"] = "x" }, "spec.nodeSelector[bad key]", "name part"},
		{"nodeSelector value", func(p *Pod) { p.Spec.NodeSelector["disk"] = "s s d" }, "spec.nodeSelector[disk]", "invalid value"},
		{"toleration Exists with value", func(p *Pod) { p.Spec.Tolerations[0].Value = "x" }, "spec.tolerations[0].value", "must be empty when operator is Exists"},
		{"toleration effect", func(p *Pod) { p.Spec.Tolerations[0].Effect = "NoWay" }, "spec.tolerations[0].effect", `unsupported value "NoWay"`},
		{"toleration operator", func(p *Pod) { p.Spec.Tolerations[0].Operator = "In" }, "spec.tolerations[0].operator", `unsupported value "In"`},
		{"toleration empty key needs Exists", func(p *Pod) {
			p.Spec.Tolerations[0] = Toleration{Operator: TolerationOpEqual, Value: "x"}
		}, "spec.tolerations[0].operator", "must be Exists when key is empty"},
		{"toleration key invalid", func(p *Pod) { p.Spec.Tolerations[0].Key = "a b" }, "spec.tolerations[0].key", "name part"},
		{"tolerationSeconds without NoExecute", func(p *Pod) { p.Spec.Tolerations[0].TolerationSeconds = ptr(int64(5)) }, "spec.tolerations[0].tolerationSeconds", "NoExecute"},
		{"volume name duplicate", func(p *Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, Volume{Name: "data", EmptyDir: &EmptyDirVolumeSource{}})
		}, "spec.volumes[1].name", `duplicate value "data"`},
		{"volume name required", func(p *Pod) { p.Spec.Volumes[0].Name = "" }, "spec.volumes[0].name", "required"},
		{"volume without source", func(p *Pod) { p.Spec.Volumes[0].EmptyDir = nil }, "spec.volumes[0]", "exactly one volume source"},
		{"volume with two sources", func(p *Pod) { p.Spec.Volumes[0].HostPath = &HostPathVolumeSource{Path: "/srv"} }, "spec.volumes[0]", "more than one volume source"},
		{"hostPath path required", func(p *Pod) {
			p.Spec.Volumes[0] = Volume{Name: "data", HostPath: &HostPathVolumeSource{}}
		}, "spec.volumes[0].hostPath.path", "required"},
		{"hostPath type", func(p *Pod) {
			p.Spec.Volumes[0] = Volume{Name: "data", HostPath: &HostPathVolumeSource{Path: "/srv", Type: "Pipe"}}
		}, "spec.volumes[0].hostPath.type", `unsupported value "Pipe"`},
		{"emptyDir medium", func(p *Pod) { p.Spec.Volumes[0].EmptyDir.Medium = "Disk" }, "spec.volumes[0].emptyDir.medium", `unsupported value "Disk"`},
		{"emptyDir sizeLimit negative", func(p *Pod) { p.Spec.Volumes[0].EmptyDir.SizeLimit = ptr(resource.MustParse("-1Gi")) }, "spec.volumes[0].emptyDir.sizeLimit", "greater than or equal to 0"},
		{"mount of missing volume", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "logs" }, "spec.containers[0].volumeMounts[0].name", `no volume named "logs"`},
		{"mountPath relative", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "data" }, "spec.containers[0].volumeMounts[0].mountPath", "absolute"},
		{"mountPath required", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "" }, "spec.containers[0].volumeMounts[0].mountPath", "required"},
		{"mountPath duplicate", func(p *Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, VolumeMount{Name: "data", MountPath: "/data/"})
		}, "spec.containers[0].volumeMounts[1].mountPath", "unique"},
		{"cluster-scoped field on pod: owner reference incomplete", func(p *Pod) {
			p.OwnerReferences = []OwnerReference{{Kind: "ReplicaSet", Name: "rs"}}
		}, "metadata.ownerReferences[0].uid", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod()
			tt.mutate(p)
			err := Validate(p)
			if err == nil {
				t.Fatalf("Validate accepted the pod; want %s: %s", tt.field, tt.msg)
			}
			st := asInvalid(t, err)
			msg, ok := causeFor(st, tt.field)
			if !ok {
				t.Fatalf("no cause for %s; causes: %+v", tt.field, st.Causes)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("cause %s: %q does not contain %q", tt.field, msg, tt.msg)
			}
			if !strings.Contains(st.Message, tt.field+": ") {
				t.Errorf("message %q does not name %s", st.Message, tt.field)
			}
			if st.Kind != "Pod" {
				t.Errorf("status kind = %q", st.Kind)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := validPod()
	p.Name = "Bad_Name"
	p.Spec.Containers = append(p.Spec.Containers,
		Container{Name: "web"}, // duplicate name, no image
		Container{Name: "side", Image: "busybox", Ports: []ContainerPort{{ContainerPort: -1}}})
	p.Spec.RestartPolicy = "Maybe"
	st := asInvalid(t, Validate(p))
	for _, f := range []string{"metadata.name", "spec.containers[1].name", "spec.containers[1].image", "spec.containers[2].ports[0].containerPort", "spec.restartPolicy"} {
		if _, ok := causeFor(st, f); !ok {
			t.Errorf("no cause for %s; causes %+v", f, st.Causes)
		}
	}
	if len(st.Causes) != 5 {
		t.Errorf("got %d causes, want 5: %+v", len(st.Causes), st.Causes)
	}
}

func TestValidateNode(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(n *Node)
		field  string
		msg    string
	}{
		{"name uppercase", func(n *Node) { n.Name = "Node1" }, "metadata.name", "RFC 1123 label"},
		{"name too long", func(n *Node) { n.Name = strings.Repeat("n", 64) }, "metadata.name", "63"},
		{"namespace on cluster-scoped", func(n *Node) { n.Namespace = "default" }, "metadata.namespace", "cluster-scoped"},
		{"taint key required", func(n *Node) { n.Spec.Taints[0].Key = "" }, "spec.taints[0].key", "required"},
		{"taint key invalid", func(n *Node) { n.Spec.Taints[0].Key = "a b" }, "spec.taints[0].key", "name part"},
		{"taint value invalid", func(n *Node) { n.Spec.Taints[0].Value = "a b" }, "spec.taints[0].value", "invalid value"},
		{"taint effect required", func(n *Node) { n.Spec.Taints[0].Effect = "" }, "spec.taints[0].effect", "required"},
		{"taint effect invalid", func(n *Node) { n.Spec.Taints[0].Effect = "Evict" }, "spec.taints[0].effect", `supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`},
		{"taint duplicate", func(n *Node) { n.Spec.Taints = append(n.Spec.Taints, Taint{Key: "gpu", Effect: TaintNoSchedule}) }, "spec.taints[1]", "duplicate taint"},
		{"label invalid", func(n *Node) { n.Labels = map[string]string{"kubernetes.io/hostname": "n 1"} }, "metadata.labels[kubernetes.io/hostname]", "invalid value"},
		{"negative capacity", func(n *Node) { n.Status.Capacity = ResourceList{ResourceMemory: resource.MustParse("-1")} }, "status.capacity.memory", "greater than or equal to 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := validNode()
			tt.mutate(n)
			st := asInvalid(t, Validate(n))
			msg, ok := causeFor(st, tt.field)
			if !ok {
				t.Fatalf("no cause for %s; causes: %+v", tt.field, st.Causes)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("cause %s: %q does not contain %q", tt.field, msg, tt.msg)
			}
		})
	}
}

func TestValidateNamespace(t *testing.T) {
	tests := []struct {
		name  string
		ns    Namespace
		field string
		msg   string
	}{
		{"name with dot", Namespace{ObjectMeta: ObjectMeta{Name: "a.b"}}, "metadata.name", "must not contain dots"},
		{"name required", Namespace{}, "metadata.name", "required"},
		{"phase", Namespace{ObjectMeta: ObjectMeta{Name: "a"}, Status: NamespaceStatus{Phase: "Gone"}}, "status.phase", `unsupported value "Gone"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := asInvalid(t, Validate(&tt.ns))
			msg, ok := causeFor(st, tt.field)
			if !ok || !strings.Contains(msg, tt.msg) {
				t.Fatalf("cause for %s = %q (%v); want %q; causes %+v", tt.field, msg, ok, tt.msg, st.Causes)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	sub := &Kind{Name: "ConfigMap"}
	if msgs := ValidateName(sub, "app.config"); len(msgs) != 0 {
		t.Errorf("subdomain name rejected for %s: %v", sub.Name, msgs)
	}
	if msgs := ValidateName(KindOf(&Pod{}), "app.config"); len(msgs) == 0 {
		t.Error("dotted pod name accepted")
	}
}

func TestValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(old, new *Pod)
		field  string // "" means valid
		msg    string
	}{
		{"image change allowed", func(_, n *Pod) { n.Spec.Containers[0].Image = "nginx:1.28" }, "", ""},
		{"nodeName set once allowed", func(_, n *Pod) { n.Spec.NodeName = "node-1" }, "", ""},
		{"status change allowed", func(_, n *Pod) { n.Status.Phase = PodRunning }, "", ""},
		{"labels change allowed", func(_, n *Pod) { n.Labels["tier"] = "front" }, "", ""},
		{"toleration added allowed", func(_, n *Pod) {
			n.Spec.Tolerations = append(n.Spec.Tolerations, Toleration{Key: "x", Operator: TolerationOpExists})
		}, "", ""},
		{"nodeName changed", func(o, n *Pod) { o.Spec.NodeName = "node-1"; n.Spec.NodeName = "node-2" }, "spec.nodeName", "field is immutable once set"},
		{"nodeName cleared", func(o, n *Pod) { o.Spec.NodeName = "node-1" }, "spec.nodeName", "field is immutable once set"},
		{"runtimeClassName changed", func(_, n *Pod) { n.Spec.RuntimeClassName = ptr(RuntimeWasm) }, "spec.runtimeClassName", "field is immutable"},
		{"toleration removed", func(_, n *Pod) { n.Spec.Tolerations = nil }, "spec.tolerations", "may not be removed"},
		{"ports changed", func(_, n *Pod) { n.Spec.Containers[0].Ports[0].ContainerPort = 8080 }, "spec", "pod updates may not change fields other than"},
		{"container added", func(_, n *Pod) {
			n.Spec.Containers = append(n.Spec.Containers, Container{Name: "b", Image: "x"})
		}, "spec", "pod updates may not change"},
		{"name changed", func(_, n *Pod) { n.Name = "other" }, "metadata.name", "field is immutable"},
		{"namespace changed", func(_, n *Pod) { n.Namespace = "other" }, "metadata.namespace", "field is immutable"},
		{"uid changed", func(o, n *Pod) { o.UID = "a"; n.UID = "b" }, "metadata.uid", "field is immutable"},
		{"new object invalid", func(_, n *Pod) { n.Spec.Containers[0].Image = "" }, "spec.containers[0].image", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPod()
			n := DeepCopy(old)
			tt.mutate(old, n)
			err := ValidateUpdate(old, n)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateUpdate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateUpdate accepted; want %s: %s", tt.field, tt.msg)
			}
			st := asInvalid(t, err)
			msg, ok := causeFor(st, tt.field)
			if !ok || !strings.Contains(msg, tt.msg) {
				t.Fatalf("cause for %s = %q (%v); want %q; causes %+v", tt.field, msg, ok, tt.msg, st.Causes)
			}
		})
	}
	t.Run("kind changed", func(t *testing.T) {
		st := asInvalid(t, ValidateUpdate(validNode(), validPod()))
		if _, ok := causeFor(st, "kind"); !ok {
			t.Errorf("causes %+v", st.Causes)
		}
	})
}

func TestHostPathMustBeClean(t *testing.T) {
	for _, p := range []string{"relative", "/srv/../etc", "/srv/", "/srv//x", "/./srv"} {
		pod := &Pod{ObjectMeta: ObjectMeta{Name: "p", Namespace: "default"}, Spec: PodSpec{
			Containers: []Container{{Name: "c", Image: "i"}},
			Volumes:    []Volume{{Name: "v", HostPath: &HostPathVolumeSource{Path: p}}},
		}}
		Default(pod)
		err := Validate(pod)
		if err == nil || !strings.Contains(err.Error(), "spec.volumes[0].hostPath.path") {
			t.Errorf("hostPath %q: want a 422 naming spec.volumes[0].hostPath.path, got %v", p, err)
		}
	}
}
