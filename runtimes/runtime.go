package runtimes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors classed by wrapping; test them with errors.Is.
var (
	// ErrNotFound: no sandbox, container or image with that ID or reference.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the runtime cannot serve now (daemon down); retry later.
	ErrUnavailable = errors.New("runtime unavailable")
)

// ReasonError carries a Kubernetes-style reason for a failure the agent
// reports in a container's waiting or terminated state (ErrImagePull,
// InvalidImageName, InvalidModule, ModuleNotFound, CreateContainerError, ...).
// Retryable says whether trying again may succeed (a registry that is down)
// or cannot (a file that is not a wasm module); the agent backs off either
// way, but shows the reason.
type ReasonError struct {
	Reason    string
	Retryable bool
	Err       error
}

func (e *ReasonError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *ReasonError) Unwrap() error { return e.Err }

// WithReason wraps err with a reason.
func WithReason(reason string, retryable bool, err error) error {
	return &ReasonError{Reason: reason, Retryable: retryable, Err: err}
}

// ReasonOf returns the reason carried by err, or fallback when it has none.
func ReasonOf(err error, fallback string) string {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Reason
	}
	return fallback
}

// Info identifies a runtime as a node advertises it.
type Info struct {
	// Name is the runtime class it serves: "containerd" or "wasm".
	Name    string
	Version string
}

// PullPolicy says when EnsureImage fetches.
type PullPolicy int

// Pull policies; the zero value means IfNotPresent.
const (
	PullIfNotPresent PullPolicy = iota
	PullAlways
	PullNever
)

// PullProgress is one report of an image pull in progress.
type PullProgress struct {
	Ref        string
	Done       int64 // bytes fetched so far
	Total      int64 // bytes in all, 0 when unknown
	Layers     int
	LayersDone int
}

// Image is an image (or wasm module) present on the node.
type Image struct {
	Ref    string // as the pod named it
	Digest string // content digest, e.g. sha256:...
	Size   int64
}

// PortMapping exposes a container port on the node.
type PortMapping struct {
	Name          string
	ContainerPort int32
	HostPort      int32
	HostIP        string
	Protocol      string // TCP, UDP, SCTP
}

// Mount is a directory of the node made visible to a container.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
	// Volume names the pod volume, for messages.
	Volume string
	// EmptyDir is set when HostPath is the pod's directory of an emptyDir
	// volume, which the runtime may back with a filesystem of its own.
	EmptyDir *EmptyDir
}

// MediumMemory is the EmptyDir medium backed by memory.
const MediumMemory = "Memory"

// EmptyDir says how to back an emptyDir volume's directory. Every
// container of the pod that mounts the volume names the same HostPath and
// the same EmptyDir.
type EmptyDir struct {
	// Medium is "" (the node's disk) or MediumMemory (a tmpfs mounted on
	// the directory, unmounted when the sandbox is removed).
	Medium string
	// SizeLimitBytes caps the volume's size; 0 means no limit. A tmpfs is
	// made that size; on disk, the runtime measures the directory and kills
	// the pod's containers with ReasonEmptyDirSizeLimit when it is passed.
	SizeLimitBytes int64
	// GID, when set (the pod's fsGroup), owns the directory, with the
	// setgid bit so that what is made in it is the group's too.
	GID *int64
}

// Seccomp profile types of Security.Seccomp.
const (
	SeccompRuntimeDefault = "RuntimeDefault"
	SeccompUnconfined     = "Unconfined"
	SeccompLocalhost      = "Localhost"
)

// Security is what a container's processes may do. The zero value is the
// runtime's safe default: the image's user, the runtime's default
// capabilities, the default seccomp profile, masked /proc paths, own PID and
// IPC namespaces, not privileged.
type Security struct {
	// Privileged gives every capability and device, no seccomp and no
	// masked or read-only paths.
	Privileged bool
	// RunAsUser and RunAsGroup override the image's user and group; nil
	// keeps the image's.
	RunAsUser  *int64
	RunAsGroup *int64
	// RunAsNonRoot refuses to create a container whose effective uid is 0
	// (ReasonCreateContainerConfigError).
	RunAsNonRoot bool
	// SupplementalGroups are added to the process's groups (the pod's
	// supplementalGroups and fsGroup).
	SupplementalGroups []int64
	// ReadOnlyRootFilesystem mounts the image's filesystem read-only.
	ReadOnlyRootFilesystem bool
	// CapAdd and CapDrop change the runtime's default capability set:
	// names without the CAP_ prefix, or "ALL". ALL in CapAdd is applied
	// first, then ALL in CapDrop, then the single names.
	CapAdd, CapDrop []string
	// NoNewPrivileges sets no_new_privs (allowPrivilegeEscalation: false).
	NoNewPrivileges bool
	// Seccomp is SeccompRuntimeDefault (also for ""), SeccompUnconfined or
	// SeccompLocalhost with SeccompProfile, a path relative to the
	// runtime's profile directory. Privileged ignores it.
	Seccomp        string
	SeccompProfile string
	// ProcMountUnmasked leaves /proc and /sys without masked and
	// read-only paths.
	ProcMountUnmasked bool
	// HostPID and HostIPC put the container in the node's PID and IPC
	// namespaces.
	HostPID, HostIPC bool
	// Sysctls are namespaced kernel parameters set in the container's
	// namespaces.
	Sysctls map[string]string
}

// SandboxConfig describes a pod sandbox.
type SandboxConfig struct {
	Namespace string
	Name      string
	UID       string
	Hostname  string
	Labels    map[string]string
	// Ports are the pod's host port mappings (containerPort with hostPort).
	Ports []PortMapping
	// PodCIDR is the node's pod address range, for runtimes that allocate pod IPs.
	PodCIDR string
	// HostNetwork puts the pod in the node's network namespace: no pod IP
	// of its own, and its ports are the node's.
	HostNetwork bool
	// DNS is the pod's resolv.conf; nil copies the node's /etc/resolv.conf.
	DNS *DNSConfig
	// WAGIMaxConcurrency caps the requests a runtime serving the pod's HTTP
	// in process (the wasm runtime's WAGI handler) runs at once; 0 is the
	// runtime's default (the pod's kyb.dev/wagi-max-concurrency).
	WAGIMaxConcurrency int `json:",omitempty"`
}

// SandboxState is the state of a sandbox; zero means unknown.
type SandboxState int

// Sandbox states.
const (
	SandboxReady SandboxState = iota + 1
	SandboxNotReady
)

// Sandbox is a pod sandbox as the runtime holds it.
type Sandbox struct {
	ID        string
	Namespace string
	Name      string
	UID       string
	Labels    map[string]string
	IP        string
	State     SandboxState
	CreatedAt time.Time
}

// EnvVar is one environment variable.
type EnvVar struct{ Name, Value string }

// ContainerConfig describes one container (or wasm module instance).
type ContainerConfig struct {
	Name string
	// Attempt is the number of restarts before this one; runtimes keep it so
	// that restart counts survive an agent restart.
	Attempt    int32
	Image      string
	Command    []string
	Args       []string
	Env        []EnvVar
	WorkingDir string
	Mounts     []Mount
	Ports      []PortMapping
	// CPURequestMilli, CPULimitMilli, MemoryLimitBytes and PidsLimit are 0
	// when unset; a runtime may apply a default pids limit.
	CPURequestMilli  int64
	CPULimitMilli    int64
	MemoryLimitBytes int64
	PidsLimit        int64
	// Security is what the container's processes may do.
	Security Security
	Labels   map[string]string
	// LogPath is a file the runtime appends the container's stdout and
	// stderr to (as CRI does); the agent tails it into the logs stream.
	LogPath string
	// Stdin keeps the process's standard input open for Attacher (else it
	// reads end of input at once); StdinOnce closes it when the first
	// attachment ends; TTY runs the process on a terminal (stdout and
	// stderr merged into LogPath). As CRI's ContainerConfig. A runtime
	// keeps them in its state, so that a new agent can attach again.
	Stdin, StdinOnce, TTY bool
}

// ContainerState is the state of a container; zero means unknown.
type ContainerState int

// Container states.
const (
	ContainerCreated ContainerState = iota + 1
	ContainerRunning
	ContainerExited
)

func (s ContainerState) String() string {
	switch s {
	case ContainerCreated:
		return "created"
	case ContainerRunning:
		return "running"
	case ContainerExited:
		return "exited"
	}
	return "unknown"
}

// ContainerStatus is the observed state of a container.
type ContainerStatus struct {
	ID         string
	SandboxID  string
	Name       string
	Attempt    int32
	Image      string
	ImageRef   string // resolved digest
	State      ContainerState
	ExitCode   int32
	Reason     string // Completed, Error, OOMKilled, ... (reasons.go)
	Message    string
	Labels     map[string]string
	LogPath    string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// ExitResult is how a container ended.
type ExitResult struct {
	ExitCode   int32
	Reason     string
	Message    string
	FinishedAt time.Time
	Err        error // set when waiting failed, not the container
}

// Runtime runs pod sandboxes and their containers. Implementations are safe
// for concurrent use. Methods that name an ID that does not exist return an
// error wrapping ErrNotFound, except Stop and Remove, which are idempotent.
type Runtime interface {
	// Info names the runtime and its version; an error means it is not usable.
	Info(ctx context.Context) (Info, error)

	// EnsureImage makes the image (or module) present on the node according
	// to policy, reporting progress if progress is not nil.
	EnsureImage(ctx context.Context, ref string, policy PullPolicy, progress func(PullProgress)) (*Image, error)

	// CreateSandbox makes the pod's sandbox ready and returns it.
	CreateSandbox(ctx context.Context, cfg *SandboxConfig) (*Sandbox, error)
	// RemoveSandbox stops every container of the sandbox (killing at once),
	// removes them and releases everything the sandbox held. Idempotent.
	RemoveSandbox(ctx context.Context, id string) error
	// ListSandboxes returns every sandbox the runtime holds, including those
	// created before an agent restart.
	ListSandboxes(ctx context.Context) ([]*Sandbox, error)

	// CreateContainer creates a container in a sandbox; it does not start it.
	CreateContainer(ctx context.Context, sandboxID string, cfg *ContainerConfig) (string, error)
	// StartContainer starts a created container.
	StartContainer(ctx context.Context, id string) error
	// WaitContainer returns a channel that yields one ExitResult when the
	// container exits (at once if it already has).
	WaitContainer(ctx context.Context, id string) (<-chan ExitResult, error)
	// StopContainer asks the container to stop, and kills it after grace.
	// It returns when the container has exited. Idempotent.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer removes a stopped container. Idempotent.
	RemoveContainer(ctx context.Context, id string) error
	// ContainerStatus returns a container's current state.
	ContainerStatus(ctx context.Context, id string) (*ContainerStatus, error)
	// ListContainers returns the containers of a sandbox, or of every
	// sandbox when sandboxID is "".
	ListContainers(ctx context.Context, sandboxID string) ([]*ContainerStatus, error)
}

// Stats is a container's resource usage.
type Stats struct {
	// CPUUsageNanos is the CPU time used since the container started.
	CPUUsageNanos uint64
	// MemoryUsageBytes is the working set (containers) or the linear
	// memory held by running instances (wasm).
	MemoryUsageBytes uint64
	// Instances is how many module instances run now (wasm only: a WAGI
	// container has one per request in flight).
	Instances int64
	Time      time.Time
}

// StatsProvider is implemented by runtimes that report usage.
type StatsProvider interface {
	ContainerStats(ctx context.Context, id string) (*Stats, error)
}

// ImageLister is implemented by runtimes that can list and import images.
type ImageLister interface {
	ListImages(ctx context.Context) ([]*Image, error)
}

// ImageImporter is implemented by runtimes that load images from an archive
// (OCI or docker tar), for air-gapped nodes.
type ImageImporter interface {
	ImportImage(ctx context.Context, path string) ([]*Image, error)
}

// NotFoundf returns an error wrapping ErrNotFound.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}

// ModuleInfo describes a wasm module of the cluster's module store, as the
// node fetches it for the wasm runtime: Digest is "sha256:<hex>".
type ModuleInfo struct {
	Digest string
	Size   int64
}

// ExecResult is how a command run by ExecSync ended.
type ExecResult struct {
	ExitCode int32
	// Output is the command's stdout and stderr, interleaved, cut at
	// MaxExecOutput bytes.
	Output []byte
}

// MaxExecOutput is how much of an ExecSync command's output is kept.
const MaxExecOutput = 10 << 10

// Execer is implemented by runtimes that run a command in a running
// container (CRI's ExecSync), as exec probes do. The containerd runtime
// runs it as a new process in the container's namespaces; the wasm runtime
// runs a new instance of the container's module with cmd as its arguments
// (argv is the container's name followed by cmd) and the container's env and
// mounts. A command that runs past timeout is killed and ExecSync returns
// an error wrapping context.DeadlineExceeded. An unknown or not running
// container is an error wrapping ErrNotFound. Safe for concurrent use.
type Execer interface {
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error)
}

// HTTPProber is implemented by runtimes that serve a container's HTTP in
// process (the wasm runtime's WAGI handler), so that an httpGet probe needs
// no network: ProbeHTTP serves req as the container serves requests to its
// containerPort port and returns the response's status code. A container
// that serves no such port is an error wrapping ErrNotFound. Safe for
// concurrent use.
type HTTPProber interface {
	ProbeHTTP(ctx context.Context, id string, port int32, req *http.Request) (int, error)
}

// HTTPServer is implemented by runtimes that serve a container's HTTP
// themselves (the wasm runtime's WAGI handler), so that the node's proxy can
// hand a Service's request to the container without a listener of its own:
// ServeContainerHTTP serves req as the container serves requests to its
// containerPort port and writes the response to w. A container that does
// not run or serves no such port is an error wrapping ErrNotFound, returned
// before anything is written to w. Safe for concurrent use; a runtime in
// another process implements it by relaying the request.
type HTTPServer interface {
	ServeContainerHTTP(id string, port int32, w http.ResponseWriter, req *http.Request) error
}
