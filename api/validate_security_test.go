package api

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// secPod returns a valid pod whose container has a securityContext.
func secPod(wasm bool) *Pod {
	p := validPod()
	if wasm {
		p.Spec.RuntimeClassName = ptr(RuntimeWasm)
	}
	p.Spec.Containers[0].SecurityContext = &SecurityContext{}
	Default(p)
	return p
}

func TestValidatePodSecurity(t *testing.T) {
	sc := func(p *Pod) *SecurityContext { return p.Spec.Containers[0].SecurityContext }
	psc := func(p *Pod) *PodSecurityContext {
		if p.Spec.SecurityContext == nil {
			p.Spec.SecurityContext = &PodSecurityContext{}
		}
		return p.Spec.SecurityContext
	}
	tests := []struct {
		name   string
		wasm   bool
		mutate func(p *Pod)
		field  string // "" when the pod is valid
		msg    string
	}{
		{"restricted container is valid", false, func(p *Pod) {
			*sc(p) = SecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(1000)), AllowPrivilegeEscalation: ptr(false),
				ReadOnlyRootFilesystem: ptr(true), Capabilities: &Capabilities{Drop: []Capability{"ALL"}, Add: []Capability{"NET_BIND_SERVICE"}},
				SeccompProfile: &SeccompProfile{Type: SeccompProfileRuntimeDefault}}
			*psc(p) = PodSecurityContext{FSGroup: ptr(int64(2000)), SupplementalGroups: []int64{3000}, Sysctls: []Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}}
		}, "", ""},
		{"runAsUser negative", false, func(p *Pod) { sc(p).RunAsUser = ptr(int64(-1)) }, "spec.containers[0].securityContext.runAsUser", "between 0 and 2147483647"},
		{"pod runAsGroup too big", false, func(p *Pod) { psc(p).RunAsGroup = ptr(int64(1 << 32)) }, "spec.securityContext.runAsGroup", "between 0 and"},
		{"fsGroup negative", false, func(p *Pod) { psc(p).FSGroup = ptr(int64(-5)) }, "spec.securityContext.fsGroup", "between 0 and"},
		{"supplementalGroups negative", false, func(p *Pod) { psc(p).SupplementalGroups = []int64{1, -1} }, "spec.securityContext.supplementalGroups[1]", "between 0 and"},
		{"capability with CAP_ prefix", false, func(p *Pod) { sc(p).Capabilities = &Capabilities{Add: []Capability{"CAP_SYS_ADMIN"}} }, "spec.containers[0].securityContext.capabilities.add[0]", `without the CAP_ prefix ("SYS_ADMIN")`},
		{"capability lower case", false, func(p *Pod) { sc(p).Capabilities = &Capabilities{Add: []Capability{"sys_admin"}} }, "spec.containers[0].securityContext.capabilities.add[0]", "unknown capability"},
		{"capability unknown", false, func(p *Pod) { sc(p).Capabilities = &Capabilities{Drop: []Capability{"FLY"}} }, "spec.containers[0].securityContext.capabilities.drop[0]", "unknown capability"},
		{"privileged without escalation", false, func(p *Pod) {
			sc(p).Privileged, sc(p).AllowPrivilegeEscalation = ptr(true), ptr(false)
		}, "spec.containers[0].securityContext.allowPrivilegeEscalation", "privileged is true"},
		{"SYS_ADMIN without escalation", false, func(p *Pod) {
			sc(p).Capabilities, sc(p).AllowPrivilegeEscalation = &Capabilities{Add: []Capability{"SYS_ADMIN"}}, ptr(false)
		}, "spec.containers[0].securityContext.allowPrivilegeEscalation", "SYS_ADMIN"},
		{"procMount unknown", false, func(p *Pod) { sc(p).ProcMount = ptr(ProcMountType("Open")) }, "spec.containers[0].securityContext.procMount", `unsupported value "Open"`},
		{"seccomp type required", false, func(p *Pod) { psc(p).SeccompProfile = &SeccompProfile{} }, "spec.securityContext.seccompProfile.type", "required"},
		{"seccomp type unknown", false, func(p *Pod) { sc(p).SeccompProfile = &SeccompProfile{Type: "Strict"} }, "spec.containers[0].securityContext.seccompProfile.type", `unsupported value "Strict"`},
		{"seccomp localhost needs a profile", false, func(p *Pod) { sc(p).SeccompProfile = &SeccompProfile{Type: SeccompProfileLocalhost} }, "spec.containers[0].securityContext.seccompProfile.localhostProfile", "required"},
		{"seccomp localhost escapes", false, func(p *Pod) {
			sc(p).SeccompProfile = &SeccompProfile{Type: SeccompProfileLocalhost, LocalhostProfile: ptr("../../etc/x.json")}
		}, "spec.containers[0].securityContext.seccompProfile.localhostProfile", "without '..'"},
		{"seccomp profile on RuntimeDefault", false, func(p *Pod) {
			sc(p).SeccompProfile = &SeccompProfile{Type: SeccompProfileRuntimeDefault, LocalhostProfile: ptr("x.json")}
		}, "spec.containers[0].securityContext.seccompProfile.localhostProfile", "must be unset"},
		{"sysctl name invalid", false, func(p *Pod) { psc(p).Sysctls = []Sysctl{{Name: "Net..x", Value: "1"}} }, "spec.securityContext.sysctls[0].name", "invalid sysctl name"},
		{"sysctl duplicate", false, func(p *Pod) {
			psc(p).Sysctls = []Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}, {Name: "net/ipv4/tcp_syncookies", Value: "0"}}
		}, "spec.securityContext.sysctls[1].name", "duplicate"},
		{"sysctl of the node", false, func(p *Pod) { psc(p).Sysctls = []Sysctl{{Name: "kernel.panic", Value: "1"}} }, "spec.securityContext.sysctls[0].name", "not namespaced"},
		{"namespaced sysctls accepted", false, func(p *Pod) {
			psc(p).Sysctls = []Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "kernel.sem", Value: "1 2 3 4"}, {Name: "fs.mqueue.msg_max", Value: "10"}, {Name: "net/core/somaxconn", Value: "1024"}}
		}, "", ""},
		{"SELinux refused", false, func(p *Pod) { psc(p).SELinuxOptions = &SELinuxOptions{Type: "spc_t"} }, "spec.securityContext.seLinuxOptions", "not supported"},
		{"AppArmor refused", false, func(p *Pod) { sc(p).AppArmorProfile = &AppArmorProfile{Type: "Unconfined"} }, "spec.containers[0].securityContext.appArmorProfile", "not supported"},
		{"hostNetwork hostPort mismatch", false, func(p *Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 8080
		}, "spec.containers[0].ports[0].hostPort", "must match containerPort"},
		{"hostUsers false refused", false, func(p *Pod) { p.Spec.HostUsers = ptr(false) }, "spec.hostUsers", "user namespaces"},
		{"hostUsers true accepted", false, func(p *Pod) { p.Spec.HostUsers = ptr(true) }, "", ""},
		{"shareProcessNamespace refused", false, func(p *Pod) { p.Spec.ShareProcessNamespace = ptr(true) }, "spec.shareProcessNamespace", "not supported"},
		{"init container securityContext checked", false, func(p *Pod) {
			p.Spec.InitContainers = []Container{{Name: "init", Image: "x", SecurityContext: &SecurityContext{RunAsUser: ptr(int64(-2))}}}
		}, "spec.initContainers[0].securityContext.runAsUser", "between 0 and"},

		// wasm: what restricts is accepted (a module holds none of it), what grants is refused.
		{"wasm restricted fields accepted", true, func(p *Pod) {
			*sc(p) = SecurityContext{RunAsNonRoot: ptr(true), AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
				Capabilities: &Capabilities{Drop: []Capability{"ALL"}}, SeccompProfile: &SeccompProfile{Type: SeccompProfileRuntimeDefault}}
			psc(p).RunAsNonRoot = ptr(true)
		}, "", ""},
		{"wasm privileged", true, func(p *Pod) { sc(p).Privileged = ptr(true) }, "spec.containers[0].securityContext.privileged", "not supported for wasm pods"},
		{"wasm capabilities.add", true, func(p *Pod) { sc(p).Capabilities = &Capabilities{Add: []Capability{"NET_RAW"}} }, "spec.containers[0].securityContext.capabilities.add", "not supported for wasm pods"},
		{"wasm runAsUser", true, func(p *Pod) { sc(p).RunAsUser = ptr(int64(1000)) }, "spec.containers[0].securityContext.runAsUser", "not supported for wasm pods"},
		{"wasm pod runAsUser", true, func(p *Pod) { psc(p).RunAsUser = ptr(int64(1000)) }, "spec.securityContext.runAsUser", "not supported for wasm pods"},
		{"wasm fsGroup", true, func(p *Pod) { psc(p).FSGroup = ptr(int64(1000)) }, "spec.securityContext.fsGroup", "not supported for wasm pods"},
		{"wasm sysctls", true, func(p *Pod) { psc(p).Sysctls = []Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}} }, "spec.securityContext.sysctls", "not supported for wasm pods"},
		{"wasm hostNetwork", true, func(p *Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork", "not supported for wasm pods"},
		{"wasm hostPID", true, func(p *Pod) { p.Spec.HostPID = true }, "spec.hostPID", "not supported for wasm pods"},
		{"wasm hostIPC", true, func(p *Pod) { p.Spec.HostIPC = true }, "spec.hostIPC", "not supported for wasm pods"},
		{"wasm procMount Unmasked", true, func(p *Pod) { sc(p).ProcMount = ptr(ProcMountUnmasked) }, "spec.containers[0].securityContext.procMount", "not supported for wasm pods"},
		{"wasm emptyDir in memory", true, func(p *Pod) { p.Spec.Volumes[0].EmptyDir.Medium = StorageMediumMemory }, "spec.volumes[0].emptyDir.medium", "not supported for wasm pods"},
		{"wasm emptyDir sizeLimit", true, func(p *Pod) { p.Spec.Volumes[0].EmptyDir.SizeLimit = ptr(resource.MustParse("1Mi")) }, "spec.volumes[0].emptyDir.sizeLimit", "not supported for wasm pods"},
		{"container emptyDir in memory with a size", false, func(p *Pod) {
			p.Spec.Volumes[0].EmptyDir = &EmptyDirVolumeSource{Medium: StorageMediumMemory, SizeLimit: ptr(resource.MustParse("1Mi"))}
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := secPod(tt.wasm)
			tt.mutate(p)
			err := Validate(p)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			st := asInvalid(t, err)
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

func TestValidateNamespacePodSecurityLabel(t *testing.T) {
	for _, v := range PodSecurityLevels {
		ns := &Namespace{ObjectMeta: ObjectMeta{Name: "a", Labels: map[string]string{LabelPodSecurityEnforce: v}}}
		if err := Validate(ns); err != nil {
			t.Errorf("level %s: %v", v, err)
		}
	}
	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "a", Labels: map[string]string{LabelPodSecurityEnforce: "lax", LabelPodSecurityEnforceVersion: "1.30"}}}
	st := asInvalid(t, Validate(ns))
	if msg, ok := causeFor(st, "metadata.labels[pod-security.kubernetes.io/enforce]"); !ok || !strings.Contains(msg, `unsupported value "lax"`) {
		t.Fatalf("causes %+v", st.Causes)
	}
	if msg, ok := causeFor(st, "metadata.labels[pod-security.kubernetes.io/enforce-version]"); !ok || !strings.Contains(msg, `"v1.<minor>"`) {
		t.Fatalf("causes %+v", st.Causes)
	}
	for _, v := range []string{"latest", "v1.30", "v1.0"} {
		ns := &Namespace{ObjectMeta: ObjectMeta{Name: "a", Labels: map[string]string{LabelPodSecurityEnforceVersion: v}}}
		if err := Validate(ns); err != nil {
			t.Errorf("enforce-version %s: %v", v, err)
		}
	}
}

func TestDefaultSecurity(t *testing.T) {
	p := &Pod{ObjectMeta: ObjectMeta{Name: "a"}, Spec: PodSpec{HostNetwork: true, Containers: []Container{
		{Name: "a", Image: "x", SecurityContext: &SecurityContext{}, Ports: []ContainerPort{{ContainerPort: 8080}}},
		{Name: "b", Image: "x"},
	}}}
	Default(p)
	if pm := p.Spec.Containers[0].SecurityContext.ProcMount; pm == nil || *pm != ProcMountDefault {
		t.Errorf("procMount = %v, want Default", pm)
	}
	if p.Spec.Containers[1].SecurityContext != nil {
		t.Errorf("a container without securityContext got one: %+v", p.Spec.Containers[1].SecurityContext)
	}
	if hp := p.Spec.Containers[0].Ports[0].HostPort; hp != 8080 {
		t.Errorf("hostNetwork hostPort = %d, want the containerPort 8080", hp)
	}
}

// The security fields are copied deep: the apiserver's cache and the
// controllers copy pods before changing them.
func TestDeepCopySecurity(t *testing.T) {
	p := secPod(false)
	p.Spec.SecurityContext = &PodSecurityContext{RunAsUser: ptr(int64(1000)), SupplementalGroups: []int64{1}, Sysctls: []Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}}}
	p.Spec.Containers[0].SecurityContext.Capabilities = &Capabilities{Drop: []Capability{"ALL"}}
	p.Spec.Containers[0].SecurityContext.Privileged = ptr(false)
	c := DeepCopy(p)
	*c.Spec.SecurityContext.RunAsUser = 0
	c.Spec.SecurityContext.SupplementalGroups[0] = 0
	c.Spec.SecurityContext.Sysctls[0].Value = "0"
	c.Spec.Containers[0].SecurityContext.Capabilities.Drop[0] = "CHOWN"
	*c.Spec.Containers[0].SecurityContext.Privileged = true
	*c.Spec.Containers[0].SecurityContext.ProcMount = ProcMountUnmasked
	sc, csc := p.Spec.SecurityContext, p.Spec.Containers[0].SecurityContext
	if *sc.RunAsUser != 1000 || sc.SupplementalGroups[0] != 1 || sc.Sysctls[0].Value != "1" ||
		csc.Capabilities.Drop[0] != "ALL" || *csc.Privileged || *csc.ProcMount != ProcMountDefault {
		t.Errorf("changing the copy changed the original: %+v %+v", sc, csc)
	}
}
