package api

// The security attributes of pods and containers, with Kubernetes' field
// names. Every field is either applied by the runtime or refused by
// validation (see docs in Validate): none is silently ignored.

// PodSecurityContext is the pod-level security of a pod (Kubernetes'
// spec.securityContext).
type PodSecurityContext struct {
	// RunAsUser is the uid every container's process runs as, unless the
	// container sets its own; unset means the image's user.
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// RunAsGroup is the primary gid; unset means the image's group.
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`
	// RunAsNonRoot, when true, makes the node refuse to start a container
	// whose effective uid is 0.
	RunAsNonRoot *bool `json:"runAsNonRoot,omitempty"`
	// FSGroup is a supplementary gid of every container; emptyDir volumes
	// are owned by it (group-writable, setgid).
	FSGroup *int64 `json:"fsGroup,omitempty"`
	// SupplementalGroups are more supplementary gids of every container.
	SupplementalGroups []int64 `json:"supplementalGroups,omitempty"`
	// SeccompProfile is every container's seccomp profile unless the
	// container sets its own; unset means RuntimeDefault.
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
	// Sysctls are namespaced kernel parameters set for the pod.
	Sysctls []Sysctl `json:"sysctls,omitempty"`
	// SELinuxOptions and AppArmorProfile are refused: kybernetes applies
	// neither, and accepting them would promise a confinement that is not there.
	SELinuxOptions  *SELinuxOptions  `json:"seLinuxOptions,omitempty"`
	AppArmorProfile *AppArmorProfile `json:"appArmorProfile,omitempty"`
}

// SecurityContext is the security of one container (Kubernetes'
// spec.containers[*].securityContext).
type SecurityContext struct {
	// Privileged runs the container with every capability, every device
	// and no seccomp, masked or read-only paths: root on the node.
	Privileged *bool `json:"privileged,omitempty"`
	// Capabilities are added to or dropped from the runtime's default set.
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// RunAsUser, RunAsGroup and RunAsNonRoot override the pod's.
	RunAsUser    *int64 `json:"runAsUser,omitempty"`
	RunAsGroup   *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot *bool  `json:"runAsNonRoot,omitempty"`
	// ReadOnlyRootFilesystem mounts the image's filesystem read-only.
	ReadOnlyRootFilesystem *bool `json:"readOnlyRootFilesystem,omitempty"`
	// AllowPrivilegeEscalation false sets no_new_privs: setuid binaries
	// and file capabilities give the process nothing.
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation,omitempty"`
	// SeccompProfile overrides the pod's.
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
	// ProcMount is Default (the runtime masks and makes read-only parts of
	// /proc and /sys) or Unmasked.
	ProcMount *ProcMountType `json:"procMount,omitempty"`
	// SELinuxOptions and AppArmorProfile are refused, as on the pod.
	SELinuxOptions  *SELinuxOptions  `json:"seLinuxOptions,omitempty"`
	AppArmorProfile *AppArmorProfile `json:"appArmorProfile,omitempty"`
}

// Capability is a Linux capability name without the CAP_ prefix, e.g.
// NET_BIND_SERVICE, or ALL.
type Capability string

// CapabilityAll names every capability in Capabilities.Add or Drop.
const CapabilityAll Capability = "ALL"

// Capabilities are added to and dropped from a container's default set.
type Capabilities struct {
	Add  []Capability `json:"add,omitempty"`
	Drop []Capability `json:"drop,omitempty"`
}

// SeccompProfileType is the kind of a seccomp profile.
type SeccompProfileType string

// Seccomp profile types.
const (
	SeccompProfileRuntimeDefault SeccompProfileType = "RuntimeDefault"
	SeccompProfileUnconfined     SeccompProfileType = "Unconfined"
	SeccompProfileLocalhost      SeccompProfileType = "Localhost"
)

// SeccompProfile selects a seccomp profile.
type SeccompProfile struct {
	Type SeccompProfileType `json:"type"`
	// LocalhostProfile is a path relative to the node's seccomp profile
	// directory; set only, and required, for type Localhost.
	LocalhostProfile *string `json:"localhostProfile,omitempty"`
}

// ProcMountType says how /proc is mounted.
type ProcMountType string

// Proc mount types.
const (
	ProcMountDefault  ProcMountType = "Default"
	ProcMountUnmasked ProcMountType = "Unmasked"
)

// Sysctl is one kernel parameter.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SELinuxOptions are SELinux labels (refused by validation).
type SELinuxOptions struct {
	User  string `json:"user,omitempty"`
	Role  string `json:"role,omitempty"`
	Type  string `json:"type,omitempty"`
	Level string `json:"level,omitempty"`
}

// AppArmorProfile selects an AppArmor profile (refused by validation).
type AppArmorProfile struct {
	Type             string  `json:"type"`
	LocalhostProfile *string `json:"localhostProfile,omitempty"`
}

// The namespace label that selects the Pod Security Standards level
// enforced on the namespace's pods, and its values.
const (
	LabelPodSecurityEnforce = "pod-security.kubernetes.io/enforce"
	PodSecurityPrivileged   = "privileged"
	PodSecurityBaseline     = "baseline"
	PodSecurityRestricted   = "restricted"
)

// LabelPodSecurityEnforceVersion pins the version of the standards; it
// must be "latest" or "v1.<minor>", and kybernetes applies its latest
// checks whatever it says.
const LabelPodSecurityEnforceVersion = "pod-security.kubernetes.io/enforce-version"

// PodSecurityLevels are the values LabelPodSecurityEnforce may take.
var PodSecurityLevels = []string{PodSecurityPrivileged, PodSecurityBaseline, PodSecurityRestricted}

// EffectiveRunAsUser returns the uid a container runs as by its spec (the
// container's runAsUser, else the pod's), or nil when neither sets it.
func EffectiveRunAsUser(pod *PodSpec, c *Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if pod.SecurityContext != nil {
		return pod.SecurityContext.RunAsUser
	}
	return nil
}

// EffectiveRunAsGroup returns the gid a container runs as by its spec, or nil.
func EffectiveRunAsGroup(pod *PodSpec, c *Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsGroup != nil {
		return c.SecurityContext.RunAsGroup
	}
	if pod.SecurityContext != nil {
		return pod.SecurityContext.RunAsGroup
	}
	return nil
}

// EffectiveRunAsNonRoot returns the container's runAsNonRoot, else the pod's, else nil.
func EffectiveRunAsNonRoot(pod *PodSpec, c *Container) *bool {
	if c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil {
		return c.SecurityContext.RunAsNonRoot
	}
	if pod.SecurityContext != nil {
		return pod.SecurityContext.RunAsNonRoot
	}
	return nil
}

// EffectiveSeccompProfile returns the container's seccomp profile, else the
// pod's, else nil (which the runtime applies as RuntimeDefault).
func EffectiveSeccompProfile(pod *PodSpec, c *Container) *SeccompProfile {
	if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
		return c.SecurityContext.SeccompProfile
	}
	if pod.SecurityContext != nil {
		return pod.SecurityContext.SeccompProfile
	}
	return nil
}

// IsPrivileged reports whether the container asks to be privileged.
func (c *Container) IsPrivileged() bool {
	return c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
}
