package runtimes

import (
	"context"
	"errors"
	"io"
)

var (
	// ErrNoStdin: the container was not created with Stdin.
	ErrNoStdin = errors.New("the container was not created with stdin")
	// ErrStdinClosed: a StdinOnce container's stdin was closed by the end
	// of its first attachment.
	ErrStdinClosed = errors.New("the container's stdin was closed after its first attach (stdinOnce)")
	// ErrNoTTY: the container was not created with a terminal.
	ErrNoTTY = errors.New("the container was not created with a terminal (tty)")
)

// Attacher is implemented by runtimes that let a client write to a
// running container's own process (CRI's Attach; the output is the
// container's log file, which the agent follows). Safe for concurrent use.
type Attacher interface {
	// AttachStdin returns a writer to the standard input of running
	// container id (a stream the runtime keeps, which outlives the agent
	// where the runtime's processes do). Several attachments may write at
	// once; their bytes interleave. A Write blocks while the process does
	// not read (the writer's Close, or ctx ending, unblocks it). Close
	// detaches; for a StdinOnce container the first Close also closes the
	// process's stdin (it reads end of input) and later calls fail with
	// ErrStdinClosed. A container created without Stdin is ErrNoStdin; an
	// unknown or not running one ErrNotFound.
	AttachStdin(ctx context.Context, id string) (io.WriteCloser, error)
	// ResizeTTY resizes the terminal of running container id (ErrNoTTY
	// when it has none).
	ResizeTTY(ctx context.Context, id string, size TermSize) error
}
