package api

import (
	"path"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxID is the largest uid or gid a pod may name, as Kubernetes allows.
const maxID = 1<<31 - 1

// linuxCapabilities are the capability names validation accepts (without
// the CAP_ prefix, upper case, as Kubernetes writes them). A name outside
// this list is refused rather than passed on, so that no spelling
// ("cap_sys_admin", "CAP_SYS_ADMIN") can slip past the Pod Security checks,
// which compare names exactly.
var linuxCapabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM",
}

// sysctlNameRE is Kubernetes' sysctl name syntax (dots or slashes between segments).
var sysctlNameRE = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

// namespacedSysctl reports whether a sysctl (dotted) lives in a pod's own
// IPC or network namespace, as the kubelet's list has it; any other sysctl
// is the node's.
func namespacedSysctl(name string) bool {
	if name == "kernel.sem" {
		return true
	}
	for _, p := range []string{"kernel.shm", "kernel.msg", "fs.mqueue.", "net."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// podSecurityVersionRE is the syntax of a pod-security enforce-version label.
var podSecurityVersionRE = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)$`)

var seccompTypes = []string{string(SeccompProfileRuntimeDefault), string(SeccompProfileUnconfined), string(SeccompProfileLocalhost)}

func validateID(e *errs, p *field.Path, v *int64) {
	if v != nil && (*v < 0 || *v > maxID) {
		e.add(p, "must be between 0 and %d, inclusive (got %d)", maxID, *v)
	}
}

func validateSeccomp(e *errs, s *SeccompProfile, p *field.Path) {
	if s == nil {
		return
	}
	switch s.Type {
	case "":
		e.required(p.Child("type"))
	case SeccompProfileLocalhost:
		lp := p.Child("localhostProfile")
		switch {
		case s.LocalhostProfile == nil || *s.LocalhostProfile == "":
			e.add(lp, "required when type is Localhost")
		case path.IsAbs(*s.LocalhostProfile) || slices.Contains(strings.Split(*s.LocalhostProfile, "/"), ".."):
			e.add(lp, "must be a relative path without '..' (got %q)", *s.LocalhostProfile)
		}
	case SeccompProfileRuntimeDefault, SeccompProfileUnconfined:
		if s.LocalhostProfile != nil {
			e.add(p.Child("localhostProfile"), "must be unset unless type is Localhost")
		}
	default:
		e.unsupported(p.Child("type"), string(s.Type), seccompTypes...)
	}
}

// refuseUnapplied refuses SELinux and AppArmor settings: kybernetes applies
// neither, and taking them would promise confinement that is not there.
func refuseUnapplied(e *errs, sel *SELinuxOptions, aa *AppArmorProfile, p *field.Path) {
	if sel != nil {
		e.add(p.Child("seLinuxOptions"), "not supported: kybernetes applies no SELinux labels")
	}
	if aa != nil {
		e.add(p.Child("appArmorProfile"), "not supported: kybernetes applies no AppArmor profiles (seccomp is applied: use seccompProfile)")
	}
}

// validatePodSecurity checks spec.securityContext, the host namespace
// flags, and what a wasm pod cannot have.
//
// For wasm pods (a module runs inside the agent, with no uid, capabilities,
// syscalls, /proc or namespaces of its own), a field that asks for a power
// or an identity is refused with 422, since nothing could honour it:
// privileged, capabilities.add, hostNetwork, hostPID, hostIPC, procMount
// Unmasked, sysctls, runAsUser, runAsGroup, fsGroup, supplementalGroups,
// and emptyDir medium Memory and sizeLimit (the wasm runtime backs no
// volume with a filesystem of its own). A field that only takes powers
// away is accepted and holds by construction: runAsNonRoot,
// allowPrivilegeEscalation, readOnlyRootFilesystem (a module sees only its
// volumes), capabilities.drop and seccompProfile (a module makes no
// syscalls). So a wasm pod can meet the restricted level.
func validatePodSecurity(e *errs, s *PodSpec, p *field.Path) {
	wasm := s.RuntimeClass() == RuntimeWasm
	if sc := s.SecurityContext; sc != nil {
		sp := p.Child("securityContext")
		validateID(e, sp.Child("runAsUser"), sc.RunAsUser)
		validateID(e, sp.Child("runAsGroup"), sc.RunAsGroup)
		validateID(e, sp.Child("fsGroup"), sc.FSGroup)
		for i := range sc.SupplementalGroups {
			validateID(e, sp.Child("supplementalGroups").Index(i), &sc.SupplementalGroups[i])
		}
		validateSeccomp(e, sc.SeccompProfile, sp.Child("seccompProfile"))
		seen := map[string]bool{}
		for i, sy := range sc.Sysctls {
			np := sp.Child("sysctls").Index(i).Child("name")
			switch {
			case sy.Name == "":
				e.required(np)
			case len(sy.Name) > 253 || !sysctlNameRE.MatchString(sy.Name):
				e.add(np, "invalid sysctl name %q: must be segments of lower-case letters, digits, '-' and '_' separated by '.' or '/'", sy.Name)
			case seen[strings.ReplaceAll(sy.Name, "/", ".")]:
				e.add(np, "duplicate value %q", sy.Name)
			case !namespacedSysctl(strings.ReplaceAll(sy.Name, "/", ".")):
				e.add(np, "sysctl %q is not namespaced: setting it would change the node, not the pod", sy.Name)
			}
			seen[strings.ReplaceAll(sy.Name, "/", ".")] = true
		}
		refuseUnapplied(e, sc.SELinuxOptions, sc.AppArmorProfile, sp)
		if wasm {
			// A module has no uid, gid or groups: its file access is the
			// agent's. Taking these would pretend to restrict what nothing
			// restricts, so they are refused.
			for _, f := range []struct {
				name string
				set  bool
			}{
				{"runAsUser", sc.RunAsUser != nil}, {"runAsGroup", sc.RunAsGroup != nil},
				{"fsGroup", sc.FSGroup != nil}, {"supplementalGroups", len(sc.SupplementalGroups) > 0},
				{"sysctls", len(sc.Sysctls) > 0},
			} {
				if f.set {
					e.add(sp.Child(f.name), "not supported for wasm pods: a module has no user, group or kernel parameters of its own")
				}
			}
		}
	}
	if wasm {
		for _, f := range []struct {
			name string
			set  bool
		}{{"hostNetwork", s.HostNetwork}, {"hostPID", s.HostPID}, {"hostIPC", s.HostIPC}} {
			if f.set {
				e.add(p.Child(f.name), "not supported for wasm pods: a module runs in the agent and has no namespaces to share")
			}
		}
	}
	if s.HostUsers != nil && !*s.HostUsers {
		e.add(p.Child("hostUsers"), "not supported: kybernetes does not run pods in user namespaces (leave it unset or true)")
	}
	if s.ShareProcessNamespace != nil && *s.ShareProcessNamespace {
		e.add(p.Child("shareProcessNamespace"), "not supported: each container of a kybernetes pod has its own process namespace")
	}
	if s.HostNetwork {
		for _, cs := range []struct {
			name string
			list []Container
		}{{"initContainers", s.InitContainers}, {"containers", s.Containers}} {
			for i, c := range cs.list {
				for j, port := range c.Ports {
					if port.HostPort != 0 && port.HostPort != port.ContainerPort {
						e.add(p.Child(cs.name).Index(i).Child("ports").Index(j).Child("hostPort"), "must match containerPort when hostNetwork is true")
					}
				}
			}
		}
	}
}

// validateSecurityContext checks a container's securityContext.
func validateSecurityContext(e *errs, sc *SecurityContext, p *field.Path, wasm bool) {
	if sc == nil {
		return
	}
	validateID(e, p.Child("runAsUser"), sc.RunAsUser)
	validateID(e, p.Child("runAsGroup"), sc.RunAsGroup)
	validateSeccomp(e, sc.SeccompProfile, p.Child("seccompProfile"))
	privileged := sc.Privileged != nil && *sc.Privileged
	noEscalation := sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	if c := sc.Capabilities; c != nil {
		for _, part := range []struct {
			name string
			list []Capability
		}{{"add", c.Add}, {"drop", c.Drop}} {
			seen := map[Capability]bool{}
			for i, cp := range part.list {
				ip := p.Child("capabilities").Child(part.name).Index(i)
				switch {
				case cp == CapabilityAll:
				case strings.HasPrefix(strings.ToUpper(string(cp)), "CAP_"):
					e.add(ip, "invalid capability %q: write it without the CAP_ prefix (%q)", cp, strings.ToUpper(string(cp))[4:])
				case !slices.Contains(linuxCapabilities, string(cp)):
					e.add(ip, "unknown capability %q: must be ALL or an upper-case Linux capability name such as NET_BIND_SERVICE", cp)
				}
				if seen[cp] {
					e.add(ip, "duplicate value %q", cp)
				}
				seen[cp] = true
			}
			if part.name == "add" && noEscalation && (seen["SYS_ADMIN"] || seen[CapabilityAll]) {
				e.add(p.Child("allowPrivilegeEscalation"), "cannot be false when capabilities.add holds SYS_ADMIN")
			}
		}
		if wasm && len(c.Add) > 0 {
			e.add(p.Child("capabilities", "add"), "not supported for wasm pods: a module has no capabilities to add (drop is accepted: it holds none)")
		}
	}
	if privileged && noEscalation {
		e.add(p.Child("allowPrivilegeEscalation"), "cannot be false when privileged is true")
	}
	if sc.ProcMount != nil {
		switch *sc.ProcMount {
		case ProcMountDefault:
		case ProcMountUnmasked:
			if wasm {
				e.add(p.Child("procMount"), "not supported for wasm pods: a module has no /proc")
			}
		default:
			e.unsupported(p.Child("procMount"), string(*sc.ProcMount), string(ProcMountDefault), string(ProcMountUnmasked))
		}
	}
	if wasm {
		if privileged {
			e.add(p.Child("privileged"), "not supported for wasm pods: a module cannot be given the node's privileges")
		}
		if sc.RunAsUser != nil {
			e.add(p.Child("runAsUser"), "not supported for wasm pods: a module has no user of its own")
		}
		if sc.RunAsGroup != nil {
			e.add(p.Child("runAsGroup"), "not supported for wasm pods: a module has no group of its own")
		}
	}
	refuseUnapplied(e, sc.SELinuxOptions, sc.AppArmorProfile, p)
}
