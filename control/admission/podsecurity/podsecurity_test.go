package podsecurity

import (
	"slices"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func ptr[T any](v T) *T { return &v }

// restrictedPod returns a pod that meets every level.
func restrictedPod() *api.Pod {
	p := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: api.PodSpec{
			SecurityContext: &api.PodSecurityContext{
				RunAsNonRoot:   ptr(true),
				SeccompProfile: &api.SeccompProfile{Type: api.SeccompProfileRuntimeDefault},
			},
			InitContainers: []api.Container{{Name: "init", Image: "x", SecurityContext: &api.SecurityContext{
				AllowPrivilegeEscalation: ptr(false), Capabilities: &api.Capabilities{Drop: []api.Capability{"ALL"}},
			}}},
			Containers: []api.Container{{
				Name: "web", Image: "x",
				Ports: []api.ContainerPort{{ContainerPort: 8080, HostPort: 18080}},
				SecurityContext: &api.SecurityContext{
					AllowPrivilegeEscalation: ptr(false),
					RunAsUser:                ptr(int64(1000)),
					Capabilities:             &api.Capabilities{Drop: []api.Capability{"ALL"}, Add: []api.Capability{"NET_BIND_SERVICE"}},
				},
			}},
			Volumes: []api.Volume{{Name: "tmp", EmptyDir: &api.EmptyDirVolumeSource{}}},
		},
	}
	api.Default(p)
	return p
}

func TestCheck(t *testing.T) {
	c0 := func(p *api.Pod) *api.SecurityContext { return p.Spec.Containers[0].SecurityContext }
	tests := []struct {
		name   string
		mutate func(p *api.Pod)
		// field is the cause's path; lowest is the least strict level that
		// refuses the change (Baseline or Restricted).
		field  string
		msg    string
		lowest Level
	}{
		// baseline
		{"hostPath", func(p *api.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, api.Volume{Name: "root", HostPath: &api.HostPathVolumeSource{Path: "/"}})
		}, "spec.volumes[1].hostPath", `hostPath volumes are not allowed (volume "root", path "/")`, Baseline},
		{"hostNetwork", func(p *api.Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork", "host namespaces", Baseline},
		{"hostPID", func(p *api.Pod) { p.Spec.HostPID = true }, "spec.hostPID", "host namespaces", Baseline},
		{"hostIPC", func(p *api.Pod) { p.Spec.HostIPC = true }, "spec.hostIPC", "host namespaces", Baseline},
		{"hostPort privileged", func(p *api.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 80 }, "spec.containers[0].ports[0].hostPort", "hostPort 80 is not allowed (allowed: 1024-65535)", Baseline},
		{"hostPort just below range", func(p *api.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 1023 }, "spec.containers[0].ports[0].hostPort", "not allowed", Baseline},
		{"privileged", func(p *api.Pod) { c0(p).Privileged = ptr(true) }, "spec.containers[0].securityContext.privileged", "privileged containers are not allowed", Baseline},
		{"privileged init container", func(p *api.Pod) {
			p.Spec.InitContainers[0].SecurityContext.Privileged = ptr(true)
		}, "spec.initContainers[0].securityContext.privileged", "privileged", Baseline},
		{"capability beyond baseline", func(p *api.Pod) {
			c0(p).Capabilities.Add = []api.Capability{"NET_BIND_SERVICE", "SYS_ADMIN"}
		}, "spec.containers[0].securityContext.capabilities.add[1]", `adding capability "SYS_ADMIN" is not allowed`, Baseline},
		{"capability ALL", func(p *api.Pod) { c0(p).Capabilities.Add = []api.Capability{"ALL"} }, "spec.containers[0].securityContext.capabilities.add[0]", `"ALL"`, Baseline},
		{"procMount Unmasked", func(p *api.Pod) { c0(p).ProcMount = ptr(api.ProcMountUnmasked) }, "spec.containers[0].securityContext.procMount", "procMount Unmasked", Baseline},
		{"pod seccomp Unconfined", func(p *api.Pod) {
			p.Spec.SecurityContext.SeccompProfile.Type = api.SeccompProfileUnconfined
		}, "spec.securityContext.seccompProfile.type", "Unconfined", Baseline},
		{"container seccomp Unconfined", func(p *api.Pod) {
			c0(p).SeccompProfile = &api.SeccompProfile{Type: api.SeccompProfileUnconfined}
		}, "spec.containers[0].securityContext.seccompProfile.type", "Unconfined", Baseline},
		{"unsafe sysctl", func(p *api.Pod) {
			p.Spec.SecurityContext.Sysctls = []api.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}, {Name: "kernel.msgmax", Value: "1"}}
		}, "spec.securityContext.sysctls[1].name", `unsafe sysctl "kernel.msgmax"`, Baseline},
		{"unsafe sysctl with slashes", func(p *api.Pod) {
			p.Spec.SecurityContext.Sysctls = []api.Sysctl{{Name: "net/core/somaxconn", Value: "1"}}
		}, "spec.securityContext.sysctls[0].name", "unsafe sysctl", Baseline},

		// restricted
		{"escalation unset", func(p *api.Pod) { c0(p).AllowPrivilegeEscalation = nil }, "spec.containers[0].securityContext.allowPrivilegeEscalation", "must be false", Restricted},
		{"escalation true", func(p *api.Pod) { c0(p).AllowPrivilegeEscalation = ptr(true) }, "spec.containers[0].securityContext.allowPrivilegeEscalation", "must be false", Restricted},
		{"no securityContext at all", func(p *api.Pod) {
			p.Spec.InitContainers[0].SecurityContext = nil
		}, "spec.initContainers[0].securityContext.capabilities.drop", "must include ALL", Restricted},
		{"runAsNonRoot unset", func(p *api.Pod) { p.Spec.SecurityContext.RunAsNonRoot = nil }, "spec.containers[0].securityContext.runAsNonRoot", "must be true", Restricted},
		{"runAsNonRoot false in container", func(p *api.Pod) { c0(p).RunAsNonRoot = ptr(false) }, "spec.containers[0].securityContext.runAsNonRoot", "must be true", Restricted},
		{"runAsNonRoot false in pod", func(p *api.Pod) { p.Spec.SecurityContext.RunAsNonRoot = ptr(false) }, "spec.securityContext.runAsNonRoot", "must be true", Restricted},
		{"runAsUser 0", func(p *api.Pod) { c0(p).RunAsUser = ptr(int64(0)) }, "spec.containers[0].securityContext.runAsUser", "runAsUser=0", Restricted},
		{"pod runAsUser 0", func(p *api.Pod) { p.Spec.SecurityContext.RunAsUser = ptr(int64(0)) }, "spec.securityContext.runAsUser", "runAsUser=0", Restricted},
		{"seccomp unset", func(p *api.Pod) { p.Spec.SecurityContext.SeccompProfile = nil }, "spec.containers[0].securityContext.seccompProfile", "RuntimeDefault or Localhost", Restricted},
		{"drop without ALL", func(p *api.Pod) { c0(p).Capabilities.Drop = []api.Capability{"NET_RAW"} }, "spec.containers[0].securityContext.capabilities.drop", "must include ALL", Restricted},
		{"add baseline capability", func(p *api.Pod) { c0(p).Capabilities.Add = []api.Capability{"CHOWN"} }, "spec.containers[0].securityContext.capabilities.add[0]", "allowed: NET_BIND_SERVICE", Restricted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := restrictedPod()
			for _, l := range []Level{Privileged, Baseline, Restricted} {
				if got := Check(l, p); got != nil {
					t.Fatalf("the unchanged pod breaks %s: %+v", l, got)
				}
			}
			tt.mutate(p)
			if got := Check(Privileged, p); got != nil {
				t.Errorf("privileged refused: %+v", got)
			}
			for _, l := range []Level{Baseline, Restricted} {
				got := Check(l, p)
				refuses := l == Restricted || tt.lowest == Baseline
				if !refuses {
					if got != nil {
						t.Errorf("%s refused what only %s should: %+v", l, tt.lowest, got)
					}
					continue
				}
				i := slices.IndexFunc(got, func(c api.StatusCause) bool { return c.Field == tt.field })
				if i < 0 {
					t.Fatalf("%s: no cause for %s: %+v", l, tt.field, got)
				}
				if !strings.Contains(got[i].Message, tt.msg) {
					t.Errorf("%s: cause %s: %q does not contain %q", l, tt.field, got[i].Message, tt.msg)
				}
			}
		})
	}
}

func TestCheckDefaultPodIsBaseline(t *testing.T) {
	// A plain pod with no securityContext runs at baseline, not restricted.
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "a"}, Spec: api.PodSpec{Containers: []api.Container{{Name: "a", Image: "x"}}}}
	api.Default(p)
	if got := Check(Baseline, p); got != nil {
		t.Errorf("baseline: %+v", got)
	}
	if got := Check(Restricted, p); len(got) != 4 {
		t.Errorf("restricted: got %d causes, want 4 (escalation, runAsNonRoot, seccomp, drop ALL): %+v", len(got), got)
	}
}

func TestNamespaceLevel(t *testing.T) {
	tests := []struct {
		name   string
		ns     string
		labels map[string]string
		want   Level
	}{
		{"default is baseline", "default", nil, Baseline},
		{"any namespace is baseline", "shop", map[string]string{"team": "a"}, Baseline},
		{"kyb-system is privileged", SystemNamespace, nil, Privileged},
		{"kyb-system may be restricted", SystemNamespace, map[string]string{api.LabelPodSecurityEnforce: "restricted"}, Restricted},
		{"labelled privileged", "ops", map[string]string{api.LabelPodSecurityEnforce: "privileged"}, Privileged},
		{"labelled restricted", "ops", map[string]string{api.LabelPodSecurityEnforce: "restricted"}, Restricted},
		{"invalid label fails closed", "ops", map[string]string{api.LabelPodSecurityEnforce: "Privileged"}, Restricted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: tt.ns, Labels: tt.labels}}
			if got := NamespaceLevel(ns); got != tt.want {
				t.Errorf("NamespaceLevel = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for _, v := range api.PodSecurityLevels {
		if l, err := ParseLevel(v); err != nil || string(l) != v {
			t.Errorf("ParseLevel(%q) = %q, %v", v, l, err)
		}
	}
	if _, err := ParseLevel("root"); err == nil || !strings.Contains(err.Error(), "privileged, baseline, restricted") {
		t.Errorf("ParseLevel(root) = %v", err)
	}
}

func BenchmarkCheckRestricted(b *testing.B) {
	p := restrictedPod()
	b.ReportAllocs()
	for b.Loop() {
		if Check(Restricted, p) != nil {
			b.Fatal("refused")
		}
	}
}

// A claim is a volume type restricted allows, as in Kubernetes.
func TestRestrictedAllowsClaims(t *testing.T) {
	p := restrictedPod()
	p.Spec.Volumes = append(p.Spec.Volumes, api.Volume{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "data"}})
	if causes := Check(Restricted, p); len(causes) != 0 {
		t.Fatalf("a pod with a claim refused by restricted: %+v", causes)
	}
}
