package podsecurity

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kybernetes/kybernetes/api"
)

// Level is a Pod Security Standards level.
type Level string

// The levels, from the most permissive.
const (
	Privileged Level = api.PodSecurityPrivileged
	Baseline   Level = api.PodSecurityBaseline
	Restricted Level = api.PodSecurityRestricted
)

// SystemNamespace is the one namespace whose pods run privileged when its
// label does not say otherwise: the cluster's own components live there.
const SystemNamespace = "kyb-system"

// Host ports baseline (and restricted) allow. Kubernetes' baseline allows
// none unless listed; kybernetes allows the unprivileged ports because a
// host port is how a pod is reached from outside the node (the wasm
// examples serve on 18080 and 18081), and a process of any user of the node
// may already bind them, so a pod holding one gains nothing the node's
// users lack. Ports below 1024 are the node's own services (ssh, DNS, HTTP)
// and stay refused: a pod could take them over.
const (
	HostPortMin = 1024
	HostPortMax = 65535
)

// baselineCapabilities may be added at baseline (Kubernetes' list: the
// default capabilities of container runtimes).
var baselineCapabilities = []api.Capability{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
	"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// safeSysctls are the sysctls baseline allows: namespaced, and unable to
// affect other pods or the node.
var safeSysctls = []string{
	"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

// ParseLevel returns the level named v, or an error naming the valid ones.
func ParseLevel(v string) (Level, error) {
	switch l := Level(v); l {
	case Privileged, Baseline, Restricted:
		return l, nil
	}
	return "", fmt.Errorf("invalid pod security level %q: must be one of %s", v, strings.Join(api.PodSecurityLevels, ", "))
}

// NamespaceLevel returns the level enforced on the pods of ns: its
// pod-security.kubernetes.io/enforce label; without one, Privileged for
// SystemNamespace and Baseline for every other. A label value that is not a
// level (validation refuses it, so only a hand-written store could hold
// one) gives Restricted: an unreadable policy fails closed.
func NamespaceLevel(ns *api.Namespace) Level {
	v, ok := ns.Labels[api.LabelPodSecurityEnforce]
	if !ok {
		if ns.Name == SystemNamespace {
			return Privileged
		}
		return Baseline
	}
	l, err := ParseLevel(v)
	if err != nil {
		return Restricted
	}
	return l
}

// Check returns every way pod breaks level, each as a cause with the field
// path (`spec.volumes[0].hostPath`) and what is not allowed; nil when the
// pod may run at that level. Privileged allows everything; restricted
// includes every baseline check. Check does not change pod.
func Check(level Level, pod *api.Pod) []api.StatusCause {
	var c checker
	switch level {
	case Privileged:
		return nil
	case Baseline:
		c.baseline(pod)
	default: // Restricted, and anything unknown fails closed
		c.baseline(pod)
		c.restricted(pod)
	}
	return c.causes
}

type checker struct{ causes []api.StatusCause }

func (c *checker) add(p *field.Path, format string, args ...any) {
	c.causes = append(c.causes, api.StatusCause{Field: p.String(), Message: fmt.Sprintf(format, args...)})
}

// container is one container of a pod with its field path.
type container struct {
	c *api.Container
	p *field.Path
}

func containersOf(s *api.PodSpec) []container {
	spec := field.NewPath("spec")
	out := make([]container, 0, len(s.InitContainers)+len(s.Containers))
	for i := range s.InitContainers {
		out = append(out, container{&s.InitContainers[i], spec.Child("initContainers").Index(i)})
	}
	for i := range s.Containers {
		out = append(out, container{&s.Containers[i], spec.Child("containers").Index(i)})
	}
	return out
}

func isTrue(b *bool) bool { return b != nil && *b }

func (c *checker) baseline(pod *api.Pod) {
	s := &pod.Spec
	spec := field.NewPath("spec")
	for _, h := range []struct {
		name string
		on   bool
	}{{"hostNetwork", s.HostNetwork}, {"hostPID", s.HostPID}, {"hostIPC", s.HostIPC}} {
		if h.on {
			c.add(spec.Child(h.name), "host namespaces are not allowed (%s=true)", h.name)
		}
	}
	for i, v := range s.Volumes {
		if v.HostPath != nil {
			c.add(spec.Child("volumes").Index(i).Child("hostPath"), "hostPath volumes are not allowed (volume %q, path %q)", v.Name, v.HostPath.Path)
		}
	}
	if sc := s.SecurityContext; sc != nil {
		sp := spec.Child("securityContext")
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == api.SeccompProfileUnconfined {
			c.add(sp.Child("seccompProfile", "type"), "seccompProfile type Unconfined is not allowed")
		}
		for i, sy := range sc.Sysctls {
			if !slices.Contains(safeSysctls, strings.ReplaceAll(sy.Name, "/", ".")) {
				c.add(sp.Child("sysctls").Index(i).Child("name"), "unsafe sysctl %q is not allowed (allowed: %s)", sy.Name, strings.Join(safeSysctls, ", "))
			}
		}
	}
	for _, ct := range containersOf(s) {
		for j, port := range ct.c.Ports {
			if port.HostPort != 0 && (port.HostPort < HostPortMin || port.HostPort > HostPortMax) {
				c.add(ct.p.Child("ports").Index(j).Child("hostPort"), "hostPort %d is not allowed (allowed: %d-%d)", port.HostPort, HostPortMin, HostPortMax)
			}
		}
		sc := ct.c.SecurityContext
		if sc == nil {
			continue
		}
		sp := ct.p.Child("securityContext")
		if isTrue(sc.Privileged) {
			c.add(sp.Child("privileged"), "privileged containers are not allowed")
		}
		if sc.Capabilities != nil {
			for j, cp := range sc.Capabilities.Add {
				if !slices.Contains(baselineCapabilities, cp) {
					c.add(sp.Child("capabilities", "add").Index(j), "adding capability %q is not allowed (allowed: %s)", cp, joinCaps(baselineCapabilities))
				}
			}
		}
		if sc.ProcMount != nil && *sc.ProcMount != api.ProcMountDefault {
			c.add(sp.Child("procMount"), "procMount %s is not allowed (only Default)", *sc.ProcMount)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == api.SeccompProfileUnconfined {
			c.add(sp.Child("seccompProfile", "type"), "seccompProfile type Unconfined is not allowed")
		}
	}
}

func joinCaps(cs []api.Capability) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

func (c *checker) restricted(pod *api.Pod) {
	s := &pod.Spec
	spec := field.NewPath("spec")
	for i, v := range s.Volumes {
		// Restricted allows only volume types that expose nothing of the
		// node; of kybernetes' sources that is emptyDir and
		// persistentVolumeClaim (hostPath is refused by baseline already).
		if v.EmptyDir == nil && v.HostPath == nil && v.PersistentVolumeClaim == nil {
			c.add(spec.Child("volumes").Index(i), "volume %q has a type that is not allowed (allowed: emptyDir, persistentVolumeClaim)", v.Name)
		}
	}
	psc := s.SecurityContext
	if psc == nil {
		psc = &api.PodSecurityContext{}
	}
	pp := spec.Child("securityContext")
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		c.add(pp.Child("runAsUser"), "runAsUser=0 is not allowed")
	}
	podNonRoot := psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	if psc.RunAsNonRoot != nil && !*psc.RunAsNonRoot {
		c.add(pp.Child("runAsNonRoot"), "runAsNonRoot must be true")
	}
	podSeccomp := psc.SeccompProfile != nil && okSeccomp(psc.SeccompProfile.Type)
	for _, ct := range containersOf(s) {
		sc := ct.c.SecurityContext
		if sc == nil {
			sc = &api.SecurityContext{}
		}
		sp := ct.p.Child("securityContext")
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.add(sp.Child("allowPrivilegeEscalation"), "allowPrivilegeEscalation must be false")
		}
		switch {
		case sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
			c.add(sp.Child("runAsNonRoot"), "runAsNonRoot must be true")
		case sc.RunAsNonRoot == nil && !podNonRoot:
			c.add(sp.Child("runAsNonRoot"), "runAsNonRoot must be true (here or in spec.securityContext)")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			c.add(sp.Child("runAsUser"), "runAsUser=0 is not allowed")
		}
		switch {
		case sc.SeccompProfile != nil && !okSeccomp(sc.SeccompProfile.Type):
			if sc.SeccompProfile.Type != api.SeccompProfileUnconfined { // Unconfined: named by baseline
				c.add(sp.Child("seccompProfile", "type"), "seccompProfile type must be RuntimeDefault or Localhost")
			}
		case sc.SeccompProfile == nil && !podSeccomp:
			c.add(sp.Child("seccompProfile"), "seccompProfile type must be RuntimeDefault or Localhost (here or in spec.securityContext)")
		}
		var drop, add []api.Capability
		if sc.Capabilities != nil {
			drop, add = sc.Capabilities.Drop, sc.Capabilities.Add
		}
		if !slices.Contains(drop, api.CapabilityAll) {
			c.add(sp.Child("capabilities", "drop"), "must include ALL")
		}
		for j, cp := range add {
			if cp != "NET_BIND_SERVICE" && slices.Contains(baselineCapabilities, cp) { // others: named by baseline
				c.add(sp.Child("capabilities", "add").Index(j), "adding capability %q is not allowed (allowed: NET_BIND_SERVICE)", cp)
			}
		}
	}
}

func okSeccomp(t api.SeccompProfileType) bool {
	return t == api.SeccompProfileRuntimeDefault || t == api.SeccompProfileLocalhost
}
