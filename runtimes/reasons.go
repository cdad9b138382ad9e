package runtimes

// The one table of the reason strings and exit codes a container's state
// carries, shared by the runtimes, the node agent and the CLI. The strings
// are Kubernetes' own (kubelet's images, container and lifecycle packages),
// so that tools written for a Kubernetes pod's status read ours unchanged.

// Termination reasons: ContainerStatus.Reason and ExitResult.Reason of a
// container that has ended.
const (
	// ReasonCompleted: the container ended by itself with exit code 0.
	ReasonCompleted = "Completed"
	// ReasonFailed: the container ended with a non-zero exit code, or was
	// stopped (exit code ExitCodeKilled).
	ReasonFailed = "Error"
	// ReasonOOMKilled: the container was killed for exceeding its memory
	// limit (a wasm module: for growing its memory beyond its page limit).
	ReasonOOMKilled = "OOMKilled"
	// ReasonEmptyDirSizeLimit: the container was killed because an emptyDir
	// volume of its pod outgrew its sizeLimit.
	ReasonEmptyDirSizeLimit = "EmptyDirSizeLimitExceeded"
	// ReasonAgentRestarted: an in-process container (wasm, fake) ended
	// because the agent process, and with it the container, ended.
	ReasonAgentRestarted = "AgentRestarted"
	// ReasonStartError: the runtime could not start the container.
	ReasonStartError = "StartError"
)

// Waiting reasons: why a container is not running (yet).
const (
	ReasonContainerCreating = "ContainerCreating"
	ReasonPodInitializing   = "PodInitializing"
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonInvalidImageName  = "InvalidImageName"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonCrashLoopBackOff  = "CrashLoopBackOff"
	// ReasonCreateContainerError: the runtime refused to create the
	// container.
	ReasonCreateContainerError = "CreateContainerError"
	// ReasonCreateContainerConfigError: the container's configuration
	// cannot be met, e.g. runAsNonRoot with an effective uid 0.
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonRunContainerError          = "RunContainerError"
	ReasonCreatePodSandboxError      = "CreatePodSandboxError"
	// ReasonInvalidModule, ReasonModuleNotFound and ReasonModuleNotAllowed
	// are the wasm runtime's: a module that does not compile, is not found,
	// or is a file:// module outside the directories the node allows.
	ReasonInvalidModule    = "InvalidModule"
	ReasonModuleNotFound   = "ModuleNotFound"
	ReasonModuleNotAllowed = "ModuleNotAllowed"
	// ReasonInvalidConfig: an in-process runtime refused a sandbox or
	// container config.
	ReasonInvalidConfig = "InvalidConfig"
)

// Event reasons the agent records about a pod's containers.
const (
	// ReasonUnhealthy: a liveness, readiness or startup probe failed.
	ReasonUnhealthy = "Unhealthy"
	// ReasonFailedPostStartHook: a postStart hook failed; the container
	// is killed.
	ReasonFailedPostStartHook = "FailedPostStartHook"
	// ReasonFailedPreStopHook: a preStop hook failed or outlived the grace
	// period; the container is stopped anyway.
	ReasonFailedPreStopHook = "FailedPreStopHook"
)

// Exit codes the runtimes and the agent report for ends the container did
// not choose itself.
const (
	// ExitCodeKilled: stopped (or killed) by the runtime before it ended by
	// itself, as for SIGKILL (128+9).
	ExitCodeKilled = 137
	// ExitCodeStartError: the runtime could not start it.
	ExitCodeStartError = 128
	// ExitCodeAgentRestarted: it ended because the agent process ended.
	ExitCodeAgentRestarted = 255
)
