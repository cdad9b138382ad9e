package api

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// ResourceName names a resource: cpu, memory, pods, or a runtime's pod slots.
type ResourceName string

// Resource names.
const (
	ResourceCPU    ResourceName = "cpu"
	ResourceMemory ResourceName = "memory"
	// ResourcePods counts container pods on a node (Kubernetes' `pods`).
	ResourcePods ResourceName = "pods"
	// ResourceWasmPods counts wasm pods on a node; a module costs far less
	// than a container, so they have their own slots.
	ResourceWasmPods ResourceName = "kyb.dev/wasm-pods"
	// ResourceEphemeralStorage is accepted and shown, not yet enforced.
	ResourceEphemeralStorage ResourceName = "ephemeral-storage"
)

// ResourceList maps resource names to quantities.
type ResourceList map[ResourceName]resource.Quantity

// Runtime class names.
const (
	RuntimeContainerd = "containerd"
	RuntimeWasm       = "wasm"
)

// Pod is a group of containers (or wasm modules) scheduled together on one node.
type Pod struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PodSpec   `json:"spec"`
	Status     PodStatus `json:"status,omitzero"`
}

// RestartPolicy says when the agent restarts a pod's exited containers.
type RestartPolicy string

// Restart policies.
const (
	RestartPolicyAlways    RestartPolicy = "Always"
	RestartPolicyOnFailure RestartPolicy = "OnFailure"
	RestartPolicyNever     RestartPolicy = "Never"
)

// PodSpec is the desired state of a pod.
type PodSpec struct {
	Containers                    []Container       `json:"containers"`
	InitContainers                []Container       `json:"initContainers,omitempty"`
	Volumes                       []Volume          `json:"volumes,omitempty"`
	RestartPolicy                 RestartPolicy     `json:"restartPolicy,omitempty"`
	TerminationGracePeriodSeconds *int64            `json:"terminationGracePeriodSeconds,omitempty"`
	NodeSelector                  map[string]string `json:"nodeSelector,omitempty"`
	NodeName                      string            `json:"nodeName,omitempty"`
	Tolerations                   []Toleration      `json:"tolerations,omitempty"`
	RuntimeClassName              *string           `json:"runtimeClassName,omitempty"`
	SchedulerName                 string            `json:"schedulerName,omitempty"`
	Hostname                      string            `json:"hostname,omitempty"`
	// Subdomain, with Hostname, gives the pod the DNS name
	// <hostname>.<subdomain>.<namespace>.svc.cluster.local when a headless
	// Service of that name selects it (its EndpointSlice endpoint carries
	// the hostname), as Kubernetes; StatefulSets set both.
	Subdomain string `json:"subdomain,omitempty"`
	// EnableServiceLinks (default true) puts the Kubernetes service
	// environment variables of the pod's namespace (FOO_SERVICE_HOST, ...)
	// into its containers' environment (api.PodServiceEnv).
	EnableServiceLinks *bool `json:"enableServiceLinks,omitempty"`
	// SecurityContext holds the pod-level security attributes; a
	// container's own SecurityContext overrides the fields both have.
	SecurityContext *PodSecurityContext `json:"securityContext,omitempty"`
	// HostNetwork, HostPID and HostIPC put the pod in the node's network,
	// process and IPC namespaces.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	HostPID     bool `json:"hostPID,omitempty"`
	HostIPC     bool `json:"hostIPC,omitempty"`
	// HostUsers false (a user namespace) and ShareProcessNamespace true are
	// refused by validation: kybernetes implements neither, and dropping
	// them would run the pod with other isolation than it asked for.
	HostUsers             *bool `json:"hostUsers,omitempty"`
	ShareProcessNamespace *bool `json:"shareProcessNamespace,omitempty"`
	// ImagePullSecrets name kubernetes.io/dockerconfigjson Secrets of the
	// pod's namespace whose credentials authenticate its image pulls.
	ImagePullSecrets []LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// ServiceAccountName is shown to the pod (fieldRef
	// spec.serviceAccountName); no service account tokens exist yet.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// DNSPolicy is how the pod's resolv.conf is made: ClusterFirst (the
	// default: the cluster DNS, with the namespace's search path),
	// ClusterFirstWithHostNet (the same for a hostNetwork pod), Default
	// (the node's resolv.conf) or None (only DNSConfig).
	DNSPolicy DNSPolicy `json:"dnsPolicy,omitempty"`
	// DNSConfig adds nameservers, search domains and options to what the
	// policy gives, as Kubernetes' PodDNSConfig.
	DNSConfig *PodDNSConfig `json:"dnsConfig,omitempty"`
}

// DNSPolicy is a pod's DNS policy, as Kubernetes'.
type DNSPolicy string

// DNS policies.
const (
	DNSClusterFirst            DNSPolicy = "ClusterFirst"
	DNSClusterFirstWithHostNet DNSPolicy = "ClusterFirstWithHostNet"
	DNSDefault                 DNSPolicy = "Default"
	DNSNone                    DNSPolicy = "None"
)

// PodDNSConfig is what a pod adds to its resolv.conf.
type PodDNSConfig struct {
	// Nameservers are IP addresses; with the policy's, at most 3 are kept.
	Nameservers []string `json:"nameservers,omitempty"`
	// Searches are search domains, appended to the policy's.
	Searches []string `json:"searches,omitempty"`
	// Options override the policy's options of the same name.
	Options []PodDNSConfigOption `json:"options,omitempty"`
}

// PodDNSConfigOption is one resolver option (e.g. ndots with value "2").
type PodDNSConfigOption struct {
	Name  string  `json:"name,omitempty"`
	Value *string `json:"value,omitempty"`
}

// RuntimeClass returns the pod's runtime: "containerd" when unset.
func (s *PodSpec) RuntimeClass() string {
	if s.RuntimeClassName == nil || *s.RuntimeClassName == "" {
		return RuntimeContainerd
	}
	return *s.RuntimeClassName
}

// Container is one container (or wasm module) of a pod.
type Container struct {
	Name            string     `json:"name"`
	Image           string     `json:"image"`
	ImagePullPolicy PullPolicy `json:"imagePullPolicy,omitempty"`
	Command         []string   `json:"command,omitempty"`
	Args            []string   `json:"args,omitempty"`
	WorkingDir      string     `json:"workingDir,omitempty"`
	Env             []EnvVar   `json:"env,omitempty"`
	// EnvFrom fills the environment from every key of ConfigMaps and
	// Secrets; Env wins over it.
	EnvFrom      []EnvFromSource      `json:"envFrom,omitempty"`
	Ports        []ContainerPort      `json:"ports,omitempty"`
	Resources    ResourceRequirements `json:"resources,omitzero"`
	VolumeMounts []VolumeMount        `json:"volumeMounts,omitempty"`
	// SecurityContext holds the container's security attributes; where a
	// field is also in the pod's SecurityContext, this one wins.
	SecurityContext *SecurityContext `json:"securityContext,omitempty"`
	// LivenessProbe restarts the container when it fails; ReadinessProbe
	// decides whether the container is ready; StartupProbe holds both back
	// until it has succeeded once. Init containers may have none of them.
	LivenessProbe  *Probe `json:"livenessProbe,omitempty"`
	ReadinessProbe *Probe `json:"readinessProbe,omitempty"`
	StartupProbe   *Probe `json:"startupProbe,omitempty"`
	// Lifecycle holds the hooks the agent runs after the container
	// starts and before it is stopped. Init containers may have none.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// TerminationMessagePath is the file in the container whose content
	// (at most 4 KiB) becomes the message of its terminated state;
	// DefaultTerminationMessagePath when empty.
	TerminationMessagePath string `json:"terminationMessagePath,omitempty"`
	// TerminationMessagePolicy is File (the default: only that file) or
	// FallbackToLogsOnError (the end of the log when the file is empty and
	// the container failed).
	TerminationMessagePolicy TerminationMessagePolicy `json:"terminationMessagePolicy,omitempty"`
	// Stdin keeps the container's standard input open for kyb attach -i
	// (a stream the runtime holds, which outlives the agent); without it
	// the process reads end of input at once. As Kubernetes.
	Stdin bool `json:"stdin,omitempty"`
	// StdinOnce closes stdin when the first attach session that sent
	// input ends: the process sees end of input, and later attaches get
	// output only. Without it stdin stays open across sessions (a client
	// that detaches leaves it open). Meaningless without Stdin.
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// TTY gives the container a terminal (stdout and stderr merged, input
	// in the terminal's line discipline), resized by kyb attach -t.
	// Containers only: a wasm module has no terminal (refused). As in
	// Kubernetes it is allowed without Stdin.
	TTY bool `json:"tty,omitempty"`
}

// Lifecycle is a container's hooks, as Kubernetes'.
type Lifecycle struct {
	// PostStart runs right after the container started; the container is
	// not Running until it returns, and is killed when it fails (event
	// FailedPostStartHook), then restarted as its restart policy says.
	PostStart *LifecycleHandler `json:"postStart,omitempty"`
	// PreStop runs before the container is sent its stop signal, within
	// its grace period; a failure is recorded (event FailedPreStopHook)
	// and the container is stopped anyway.
	PreStop *LifecycleHandler `json:"preStop,omitempty"`
}

// LifecycleHandler is what a hook does: exactly one member is set.
type LifecycleHandler struct {
	// Exec runs a command in the container (for a wasm container, a new
	// instance of its module); a non-zero exit code is a failure.
	Exec *ExecAction `json:"exec,omitempty"`
	// HTTPGet sends a GET; a status outside 200-399 is a failure.
	HTTPGet *HTTPGetAction `json:"httpGet,omitempty"`
	// TCPSocket is accepted by the decoder and refused by validation, as
	// Kubernetes never ran it for a hook.
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	// Sleep pauses the hook for a number of seconds.
	Sleep *SleepAction `json:"sleep,omitempty"`
}

// SleepAction is a hook that waits.
type SleepAction struct {
	Seconds int64 `json:"seconds"`
}

// TerminationMessagePolicy says where a terminated container's message
// comes from.
type TerminationMessagePolicy string

// Termination message policies and the default path, as Kubernetes'.
const (
	TerminationMessageReadFile              TerminationMessagePolicy = "File"
	TerminationMessageFallbackToLogsOnError TerminationMessagePolicy = "FallbackToLogsOnError"
	DefaultTerminationMessagePath                                    = "/dev/termination-log"
	// MaxTerminationMessageBytes caps the message read from the file.
	MaxTerminationMessageBytes = 4096
)

// Probe is a health check the node agent runs against a container, with
// Kubernetes' fields and defaults (periodSeconds 10, timeoutSeconds 1,
// successThreshold 1, failureThreshold 3).
type Probe struct {
	ProbeHandler `json:",inline"`
	// InitialDelaySeconds is how long after the container started the
	// first probe runs.
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	// TimeoutSeconds bounds one probe; a probe that times out failed.
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// PeriodSeconds is how often the probe runs.
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`
	// SuccessThreshold is how many successes in a row make a failed probe
	// succeed again; 1 for liveness and startup probes.
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
	// FailureThreshold is how many failures in a row make the probe fail.
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// TerminationGracePeriodSeconds, on a liveness or startup probe, is the
	// grace period of a container killed because the probe failed; nil
	// takes the pod's.
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// ProbeHandler is what a probe does: exactly one member is set.
type ProbeHandler struct {
	// Exec runs a command in the container (for a wasm container, a new
	// instance of its module with the command as its arguments); exit
	// code 0 is success.
	Exec *ExecAction `json:"exec,omitempty"`
	// HTTPGet sends a GET; a status from 200 to 399 is success.
	HTTPGet *HTTPGetAction `json:"httpGet,omitempty"`
	// TCPSocket opens a TCP connection; a connection is success.
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	// GRPC is accepted by the decoder and refused by validation: the
	// agent does not implement gRPC health checks.
	GRPC *GRPCAction `json:"grpc,omitempty"`
}

// ExecAction is a command run by an exec probe.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// URIScheme is HTTP or HTTPS.
type URIScheme string

// URI schemes of an HTTPGetAction.
const (
	URISchemeHTTP  URIScheme = "HTTP"
	URISchemeHTTPS URIScheme = "HTTPS"
)

// HTTPGetAction is the request of an httpGet probe.
type HTTPGetAction struct {
	// Path is the request path; "/" when empty.
	Path string `json:"path,omitempty"`
	// Port is a port number or the name of one of the container's ports.
	Port IntOrString `json:"port"`
	// Host is the host to connect to; the pod's IP when empty.
	Host string `json:"host,omitempty"`
	// Scheme is HTTP (the default) or HTTPS (certificates are not checked).
	Scheme      URIScheme    `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one header of an httpGet probe's request.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction is the connection of a tcpSocket probe.
type TCPSocketAction struct {
	// Port is a port number or the name of one of the container's ports.
	Port IntOrString `json:"port"`
	// Host is the host to connect to; the pod's IP when empty.
	Host string `json:"host,omitempty"`
}

// GRPCAction is a gRPC health check (refused by validation).
type GRPCAction struct {
	Port    int32   `json:"port"`
	Service *string `json:"service,omitempty"`
}

// PullPolicy says when an image is pulled.
type PullPolicy string

// Pull policies.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// EnvVar is one environment variable: a literal Value (which may refer
// to earlier variables as $(NAME)) or a ValueFrom source (podconfig.go).
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// Protocol is a network protocol.
type Protocol string

// Protocols.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// ContainerPort is a port a container listens on.
type ContainerPort struct {
	Name          string   `json:"name,omitempty"`
	ContainerPort int32    `json:"containerPort"`
	HostPort      int32    `json:"hostPort,omitempty"`
	HostIP        string   `json:"hostIP,omitempty"`
	Protocol      Protocol `json:"protocol,omitempty"`
}

// ResourceRequirements are a container's requests and limits.
type ResourceRequirements struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// Volume is a pod volume. Exactly one source is set.
type Volume struct {
	Name     string                `json:"name"`
	EmptyDir *EmptyDirVolumeSource `json:"emptyDir,omitempty"`
	HostPath *HostPathVolumeSource `json:"hostPath,omitempty"`
	// ConfigMap, Secret, DownwardAPI and Projected are files the agent
	// writes (podconfig.go), mounted read-only.
	ConfigMap   *ConfigMapVolumeSource   `json:"configMap,omitempty"`
	Secret      *SecretVolumeSource      `json:"secret,omitempty"`
	DownwardAPI *DownwardAPIVolumeSource `json:"downwardAPI,omitempty"`
	Projected   *ProjectedVolumeSource   `json:"projected,omitempty"`
	// PersistentVolumeClaim is the volume bound to a claim of the pod's
	// namespace (storage.go).
	PersistentVolumeClaim *PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
}

// StorageMediumMemory is the emptyDir medium backed by memory (tmpfs).
const StorageMediumMemory = "Memory"

// EmptyDirVolumeSource is a scratch directory that lives as long as the pod.
// Medium "" is the node's disk, "Memory" a tmpfs; SizeLimit caps its size
// (the tmpfs's size; on disk, measured by the runtime, which kills the
// pod's containers with reason EmptyDirSizeLimitExceeded when it is passed).
type EmptyDirVolumeSource struct {
	Medium    string             `json:"medium,omitempty"`
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
}

// HostPathVolumeSource is a directory of the node.
type HostPathVolumeSource struct {
	Path string `json:"path"`
	Type string `json:"type,omitempty"`
}

// VolumeMount mounts a pod volume into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// TaintEffect is what a taint does to pods that do not tolerate it.
type TaintEffect string

// Taint effects.
const (
	TaintNoSchedule       TaintEffect = "NoSchedule"
	TaintPreferNoSchedule TaintEffect = "PreferNoSchedule"
	TaintNoExecute        TaintEffect = "NoExecute"
)

// Taint repels pods that do not tolerate it.
type Taint struct {
	Key       string      `json:"key"`
	Value     string      `json:"value,omitempty"`
	Effect    TaintEffect `json:"effect"`
	TimeAdded *time.Time  `json:"timeAdded,omitempty"`
}

// Taints the node lifecycle controller puts on nodes, as Kubernetes': a
// node whose agent stopped posting status (Ready Unknown) is unreachable, a
// node whose agent reports Ready False is not-ready. Both with effect
// NoExecute: the pods on it are evicted once their toleration runs out.
const (
	TaintNodeUnreachable = "node.kubernetes.io/unreachable"
	TaintNodeNotReady    = "node.kubernetes.io/not-ready"
)

// DefaultTolerationSeconds is how long a pod tolerates the unreachable and
// not-ready NoExecute taints when it says nothing about them (Kubernetes'
// DefaultTolerationSeconds admission, 300 s).
const DefaultTolerationSeconds = int64(300)

// LabelTopologyZone is the node label that names its zone; evictions stop
// in a zone where most nodes went silent at once.
const LabelTopologyZone = "topology.kubernetes.io/zone"

// TolerationOperator is Equal or Exists.
type TolerationOperator string

// Toleration operators.
const (
	TolerationOpEqual  TolerationOperator = "Equal"
	TolerationOpExists TolerationOperator = "Exists"
)

// Toleration lets a pod be scheduled onto a node with a matching taint.
type Toleration struct {
	Key               string             `json:"key,omitempty"`
	Operator          TolerationOperator `json:"operator,omitempty"`
	Value             string             `json:"value,omitempty"`
	Effect            TaintEffect        `json:"effect,omitempty"`
	TolerationSeconds *int64             `json:"tolerationSeconds,omitempty"`
}

// ToleratesTaint reports whether t tolerates taint, with Kubernetes' rules:
// an empty effect matches every effect, an empty key with Exists matches
// every taint.
func (t *Toleration) ToleratesTaint(taint *Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", TolerationOpEqual:
		return t.Value == taint.Value
	case TolerationOpExists:
		return true
	}
	return false
}

// PodPhase is the coarse state of a pod.
type PodPhase string

// Pod phases.
const (
	PodPending   PodPhase = "Pending"
	PodRunning   PodPhase = "Running"
	PodSucceeded PodPhase = "Succeeded"
	PodFailed    PodPhase = "Failed"
	PodUnknown   PodPhase = "Unknown"
)

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

// Condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Pod condition types.
const (
	PodScheduled        = "PodScheduled"
	PodInitialized      = "Initialized"
	PodReady            = "Ready"
	ContainersReady     = "ContainersReady"
	ReasonUnschedulable = "Unschedulable"
	// DisruptionTarget says the pod is about to be deleted by the cluster
	// (an eviction), as Kubernetes' condition of that name.
	DisruptionTarget = "DisruptionTarget"
	// ReasonNodeLost is the Ready condition's reason on a pod whose node
	// stopped posting status.
	ReasonNodeLost = "NodeLost"
	// ReasonDeletionByTaintManager is the DisruptionTarget condition's
	// reason on a pod evicted for a NoExecute taint.
	ReasonDeletionByTaintManager = "DeletionByTaintManager"
)

// PodCondition is one condition of a pod.
type PodCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastProbeTime      time.Time       `json:"lastProbeTime,omitzero"`
	LastTransitionTime time.Time       `json:"lastTransitionTime,omitzero"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// PodIP is one IP address of a pod.
type PodIP struct {
	IP string `json:"ip"`
}

// PodStatus is the observed state of a pod, reported by its node's agent
// (and, for scheduling, by the scheduler).
type PodStatus struct {
	Phase             PodPhase          `json:"phase,omitempty"`
	Conditions        []PodCondition    `json:"conditions,omitempty"`
	Message           string            `json:"message,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	HostIP            string            `json:"hostIP,omitempty"`
	PodIP             string            `json:"podIP,omitempty"`
	PodIPs            []PodIP           `json:"podIPs,omitempty"`
	StartTime         *time.Time        `json:"startTime,omitempty"`
	ContainerStatuses []ContainerStatus `json:"containerStatuses,omitempty"`
	// InitContainerStatuses are the states of spec.initContainers, in order.
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses,omitempty"`
	// ObservedGeneration is the pod generation the agent acted on.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// Condition returns the pod condition of the given type, or nil.
func (s *PodStatus) Condition(typ string) *PodCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition sets or replaces a condition, keeping LastTransitionTime
// when the status did not change.
func (s *PodStatus) SetCondition(c PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status && c.LastTransitionTime.IsZero() {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			}
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

// ContainerStatus is the observed state of one container.
type ContainerStatus struct {
	Name         string         `json:"name"`
	State        ContainerState `json:"state,omitzero"`
	LastState    ContainerState `json:"lastTerminationState,omitzero"`
	Ready        bool           `json:"ready"`
	RestartCount int32          `json:"restartCount"`
	Image        string         `json:"image"`
	ImageID      string         `json:"imageID,omitempty"`
	ContainerID  string         `json:"containerID,omitempty"`
	Started      *bool          `json:"started,omitempty"`
}

// ContainerState holds exactly one of its members, or none when unknown.
type ContainerState struct {
	Waiting    *ContainerStateWaiting    `json:"waiting,omitempty"`
	Running    *ContainerStateRunning    `json:"running,omitempty"`
	Terminated *ContainerStateTerminated `json:"terminated,omitempty"`
}

// ContainerStateWaiting is a container not yet running.
type ContainerStateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ContainerStateRunning is a running container.
type ContainerStateRunning struct {
	StartedAt time.Time `json:"startedAt,omitzero"`
}

// ContainerStateTerminated is a container that exited.
type ContainerStateTerminated struct {
	ExitCode    int32     `json:"exitCode"`
	Signal      int32     `json:"signal,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Message     string    `json:"message,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	ContainerID string    `json:"containerID,omitempty"`
}
