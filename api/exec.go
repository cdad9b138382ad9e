package api

// exec, attach and port-forward: interactive sessions streamed over NATS.
//
// A session runs between a user's client and the agent of the pod's node,
// relayed by the apiserver (users and nodes live in separate NATS accounts;
// the apiserver is the one party both reach, and it authorizes every frame
// by its sender). No port is opened on any node.
//
//  1. The client sends an ExecRequest to kyb.api.v1.exec (or .portforward,
//     .attach) with a reply inbox. The apiserver checks it, authorizes
//     create on pods/exec (pods/portforward, pods/attach), picks an
//     unguessable session id and publishes an ExecStart on
//     kyb.agent.<node>.exec.
//  2. Frames flow on fixed subjects, named by ExecSessionHeader and typed by
//     ExecFrameHeader: client -> kyb.api.v1.exec.input -> apiserver ->
//     kyb.agent.<node>.exec -> agent, and agent -> kyb.node.<node>.exec ->
//     apiserver -> the client's reply inbox. The apiserver accepts a client
//     frame only from the session's user and a node frame only from the
//     session's node.
//  3. Flow control is by credit, end to end: a sender may have at most
//     ExecWindow bytes of data frames not yet credited by the receiver,
//     which sends FrameCredit (ExecCreditHeader: bytes) as it consumes.
//  4. Every hop pings (FramePing) each ExecStart.PingMillis; a side that hears
//     nothing for ExecIdlePings intervals ends the session, so a client that
//     vanishes leaves no process behind.
//  5. The session ends with one FrameExit (body ExecExit) to the client.
const (
	// SubjectExec: body ExecRequest; a stream of frames on the reply inbox.
	SubjectExec = SubjectPrefix + ".exec"
	// SubjectAttach: body ExecRequest; as exec, to the container's own process.
	SubjectAttach = SubjectPrefix + ".attach"
	// SubjectPortForward: body ExecRequest with Port; one session per
	// connection, its stdin and stdout the connection's two directions.
	SubjectPortForward = SubjectPrefix + ".portforward"
	// SubjectExecInput: a client's frames of an open session (no reply).
	SubjectExecInput = SubjectPrefix + ".exec.input"

	// NodeVerbExec: an agent's frames of a session (no reply).
	NodeVerbExec = "exec"
	// AgentVerbExec: the control plane's frames to an agent: ExecStart
	// (FrameStart) and the client's frames.
	AgentVerbExec = "exec"

	// ExecSessionHeader names the session of a frame.
	ExecSessionHeader = "Kyb-Exec-Session"
	// ExecFrameHeader is a frame's type (Frame*).
	ExecFrameHeader = "Kyb-Exec-Frame"
	// ExecCreditHeader is the byte count a FrameCredit grants.
	ExecCreditHeader = "Kyb-Exec-Credit"

	// ExecWindow is how many data bytes a sender may have in flight.
	ExecWindow = 256 << 10
	// ExecChunk is the largest data frame.
	ExecChunk = 32 << 10
	// ExecIdlePings is how many ping intervals of silence end a session.
	ExecIdlePings = 5
	// MaxExecArgs and MaxExecArgBytes bound an exec's command.
	MaxExecArgs     = 1024
	MaxExecArgBytes = 128 << 10
)

// Frame types (ExecFrameHeader).
const (
	FrameStart   = "start"   // control plane -> agent: body ExecStart
	FrameStarted = "started" // agent -> client: the process runs; body ExecStarted
	FrameStdin   = "stdin"   // client -> agent: data; an empty body is EOF
	FrameStdout  = "stdout"  // agent -> client: data
	FrameStderr  = "stderr"  // agent -> client: data
	FrameResize  = "resize"  // client -> agent: body TermSize
	FrameCredit  = "credit"  // either way: ExecCreditHeader more bytes may be sent
	FramePing    = "ping"    // either way: still here
	FrameClose   = "close"   // client or control plane -> agent: end it, kill the process
	FrameExit    = "exit"    // agent -> client: body ExecExit; the last frame
)

// Session kinds of ExecStart.
const (
	SessionExec        = "exec"
	SessionAttach      = "attach"
	SessionPortForward = "portforward"
)

// ExecRequest opens an exec, attach or port-forward session.
type ExecRequest struct {
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod"`
	// Container defaults to the pod's only container.
	Container string `json:"container,omitempty"`
	// Command is exec's argv.
	Command []string `json:"command,omitempty"`
	// Stdin: the client sends stdin frames (else the process's stdin is
	// empty). For attach they go to the container's own stdin (it must
	// have stdin: true, else 400); their end detaches, or with stdinOnce
	// closes the container's stdin.
	Stdin bool `json:"stdin,omitempty"`
	// TTY runs the command on a terminal (stdout and stderr merged); for
	// attach, resize frames resize the container's terminal (ignored when
	// it has none).
	TTY bool `json:"tty,omitempty"`
	// Size is the terminal's first size.
	Size *TermSize `json:"size,omitempty"`
	// Port is port-forward's pod port.
	Port int32 `json:"port,omitempty"`
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width  uint16 `json:"width"`
	Height uint16 `json:"height"`
}

// ExecStart is what the control plane asks an agent to run.
type ExecStart struct {
	Session   string    `json:"session"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	UID       string    `json:"uid"`
	Container string    `json:"container,omitempty"`
	Command   []string  `json:"command,omitempty"`
	Stdin     bool      `json:"stdin,omitempty"`
	TTY       bool      `json:"tty,omitempty"`
	Size      *TermSize `json:"size,omitempty"`
	Port      int32     `json:"port,omitempty"`
	// PingMillis is the ping interval of the session's hops.
	PingMillis int64 `json:"pingMillis"`
}

// ExecStarted tells the client its session runs.
type ExecStarted struct {
	Session    string `json:"session"`
	PingMillis int64  `json:"pingMillis"`
}

// ExecExit ends a session: the command's exit code, or the error that
// ended it (then ExitCode is -1).
type ExecExit struct {
	ExitCode int32   `json:"exitCode"`
	Error    *Status `json:"error,omitempty"`
}
