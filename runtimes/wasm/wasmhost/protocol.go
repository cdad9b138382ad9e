package wasmhost

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Protocol is the version of the agent–host protocol this build speaks.
// Hello and Shutdown keep their shape in every version, so that an agent
// can always learn what a host speaks and replace one it cannot talk to.
const Protocol = 1

// MinProtocol is the oldest protocol version this build's host serves.
const MinProtocol = 1

// The first byte an agent writes on a new connection says what it is.
const (
	connControl = 'C' // the agent calls the host (net/rpc client on the agent)
	connModules = 'M' // the host calls the agent's module store (roles reversed)
	connAck     = 'A' // the host's answer to connModules and connExec, once it uses the connection
	// connExec is one interactive exec (runtimes.StreamExecer) in frames
	// (see execwire.go). A host older than it closes the connection
	// without an ack, which the agent reports as exec not supported.
	connExec = 'X'
)

// serviceName is the net/rpc service of the host; moduleService that of the
// agent's module store, served on a connModules connection.
const (
	serviceName   = "Host"
	moduleService = "Modules"
)

// WireError is an error as it crosses the socket: its message and the
// classes the agent tests with errors.Is and errors.As.
type WireError struct {
	Msg                                                 string
	Reason                                              string // runtimes.ReasonError's reason; "" when none
	ReasonMsg                                           string // the message of the error the reason wraps
	Retryable                                           bool
	NotFound, Unavailable, Deadline, Canceled, NotExist bool
	// NoStdin and StdinClosed class attach errors (an older host leaves
	// them false).
	NoStdin, StdinClosed bool
}

// Result is embedded in every reply: the call's error, nil on success.
type Result struct{ Err *WireError }

func (r *Result) wireErr() *WireError { return r.Err }

type replyWithErr interface{ wireErr() *WireError }

// toWire encodes err; nil stays nil.
func toWire(err error) *WireError {
	if err == nil {
		return nil
	}
	w := &WireError{
		Msg:         err.Error(),
		NotFound:    errors.Is(err, runtimes.ErrNotFound),
		Unavailable: errors.Is(err, runtimes.ErrUnavailable),
		Deadline:    errors.Is(err, context.DeadlineExceeded),
		Canceled:    errors.Is(err, context.Canceled),
		NotExist:    errors.Is(err, fs.ErrNotExist),
		NoStdin:     errors.Is(err, runtimes.ErrNoStdin),
		StdinClosed: errors.Is(err, runtimes.ErrStdinClosed),
	}
	var re *runtimes.ReasonError
	if errors.As(err, &re) {
		w.Reason, w.Retryable = re.Reason, re.Retryable
		if re.Err != nil {
			w.ReasonMsg = re.Err.Error()
		}
	}
	return w
}

// remoteError is a decoded WireError: the host's message, and the classes
// it had.
type remoteError struct{ w WireError }

func (e *remoteError) Error() string { return e.w.Msg }

func (e *remoteError) Is(target error) bool {
	switch target {
	case runtimes.ErrNotFound:
		return e.w.NotFound
	case runtimes.ErrUnavailable:
		return e.w.Unavailable
	case context.DeadlineExceeded:
		return e.w.Deadline
	case context.Canceled:
		return e.w.Canceled
	case fs.ErrNotExist:
		return e.w.NotExist
	case runtimes.ErrNoStdin:
		return e.w.NoStdin
	case runtimes.ErrStdinClosed:
		return e.w.StdinClosed
	}
	return false
}

// As gives a *runtimes.ReasonError like the host's: its reason, and the
// message of the error it wrapped (with the same classes).
func (e *remoteError) As(target any) bool {
	t, ok := target.(**runtimes.ReasonError)
	if !ok || e.w.Reason == "" {
		return false
	}
	inner := e.w
	inner.Reason, inner.Msg = "", e.w.ReasonMsg
	*t = &runtimes.ReasonError{Reason: e.w.Reason, Retryable: e.w.Retryable, Err: &remoteError{w: inner}}
	return true
}

// fromWire decodes w; nil stays nil.
func fromWire(w *WireError) error {
	if w == nil {
		return nil
	}
	return &remoteError{w: *w}
}

// Call is embedded in every argument: the caller's deadline (zero: none),
// which the host applies to the work it does for the call.
type Call struct{ Deadline time.Time }

func (c Call) context() (context.Context, context.CancelFunc) {
	if c.Deadline.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), c.Deadline)
}

// HelloArgs is what an agent says first.
type HelloArgs struct {
	Call
	Protocol     int
	AgentVersion string
}

// HelloReply says who the host is.
type HelloReply struct {
	Result
	Protocol, MinProtocol int
	// Version is the kyb build the host runs; ConfigHash the hash of its
	// HostConfig.
	Version, ConfigHash string
	PID                 int
	StartedAt           time.Time
	// Sandboxes is how many sandboxes it holds.
	Sandboxes int
	// Execs is how many exec commands run in it now (an older host
	// leaves it 0).
	Execs int
}

// IDArgs names a sandbox or container.
type IDArgs struct {
	Call
	ID string
}

// Empty is a reply with nothing but its error.
type Empty struct{ Result }

// InfoReply answers Info.
type InfoReply struct {
	Result
	Info runtimes.Info
}

// EnsureImageArgs asks for a module.
type EnsureImageArgs struct {
	Call
	Ref    string
	Policy runtimes.PullPolicy
	// Auth are the pod's pull secrets' logins (runtimes.AuthPuller).
	Auth []runtimes.RegistryAuth
}

// ImageReply answers EnsureImage.
type ImageReply struct {
	Result
	Image *runtimes.Image
}

// CreateSandboxArgs asks for a sandbox. The configs travel as JSON:
// gob drops a pointer to a zero value (runAsUser: 0, fsGroup: 0), which
// means something else than no pointer.
type CreateSandboxArgs struct {
	Call
	Config []byte // JSON of runtimes.SandboxConfig
}

// SandboxReply answers CreateSandbox.
type SandboxReply struct {
	Result
	Sandbox *runtimes.Sandbox
}

// SandboxesReply answers ListSandboxes.
type SandboxesReply struct {
	Result
	Sandboxes []*runtimes.Sandbox
}

// CreateContainerArgs asks for a container.
type CreateContainerArgs struct {
	Call
	SandboxID string
	Config    []byte // JSON of runtimes.ContainerConfig
}

// StringReply answers CreateContainer with the container's ID.
type StringReply struct {
	Result
	Value string
}

// WaitArgs waits for a container's end, at most MaxWait (a long poll: the
// agent asks again while the container runs).
type WaitArgs struct {
	Call
	ID      string
	MaxWait time.Duration
}

// WaitReply says whether the container ended, and how.
type WaitReply struct {
	Result
	Done       bool
	ExitCode   int32
	Reason     string
	Message    string
	FinishedAt time.Time
}

// StopArgs stops a container.
type StopArgs struct {
	Call
	ID    string
	Grace time.Duration
}

// StatusReply answers ContainerStatus.
type StatusReply struct {
	Result
	Status *runtimes.ContainerStatus
}

// ListContainersArgs lists the containers of a sandbox ("" for all).
type ListContainersArgs struct {
	Call
	SandboxID string
}

// StatusesReply answers ListContainers.
type StatusesReply struct {
	Result
	Statuses []*runtimes.ContainerStatus
}

// StatsReply answers ContainerStats.
type StatsReply struct {
	Result
	Stats *runtimes.Stats
}

// ImagesReply answers ListImages.
type ImagesReply struct {
	Result
	Images []*runtimes.Image
}

// ExecArgs runs a command in a container.
type ExecArgs struct {
	Call
	ID      string
	Cmd     []string
	Timeout time.Duration
}

// ExecReply answers ExecSync.
type ExecReply struct {
	Result
	Exec *runtimes.ExecResult
}

// MaxProbeBody caps the body of a probe request that crosses the socket.
const MaxProbeBody = 64 << 10

// ProbeArgs is an httpGet probe's request.
type ProbeArgs struct {
	Call
	ID     string
	Port   int32
	Method string
	URL    string
	Host   string
	Header http.Header
	Body   []byte
}

// ProbeReply answers ProbeHTTP with the response's status code.
type ProbeReply struct {
	Result
	Code int
}

// MaxServeBody caps the request and the response body of a Service request
// relayed to a wasm pod through the host (ServeHTTP); both cross the
// socket whole.
const MaxServeBody = 16 << 20

// ServeArgs is a Service's request for a wasm pod's port (the node's
// proxy gateway, runtimes.HTTPServer).
type ServeArgs struct {
	Call
	ID         string
	Port       int32
	Method     string
	URL        string
	Host       string
	RemoteAddr string
	Header     http.Header
	Body       []byte
}

// ServeReply is the pod's response.
type ServeReply struct {
	Result
	Code   int
	Header http.Header
	Body   []byte
}

// ModuleArgs names a module of the agent's module store.
type ModuleArgs struct{ Name string }

// ModuleInfoReply answers Modules.Info.
type ModuleInfoReply struct {
	Result
	Info runtimes.ModuleInfo
}

// ModuleOpenReply answers Modules.Open with the module's bytes.
type ModuleOpenReply struct {
	Result
	Info  runtimes.ModuleInfo
	Bytes []byte
}
