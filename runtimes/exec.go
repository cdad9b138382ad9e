package runtimes

import (
	"context"
	"io"
)

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// ExecOptions is one interactive command for StreamExecer.
type ExecOptions struct {
	// Cmd is argv; it may not be empty.
	Cmd []string
	// Stdin is the command's input; nil means none (an empty input).
	Stdin io.Reader
	// Stdout and Stderr receive its output; with TTY, Stderr is unused
	// (a terminal merges both). nil discards.
	Stdout, Stderr io.Writer
	// TTY runs the command on a pseudo-terminal of Size.
	TTY  bool
	Size *TermSize
	// Resize delivers later terminal sizes (TTY only); may be nil.
	Resize <-chan TermSize
	// OnStart, when set, is called once the command runs (not when it
	// could not be started).
	OnStart func()
}

// StreamExecer is implemented by runtimes that run an interactive command
// in a running container (CRI's Exec): the containerd runtime runs a new
// process in the container's namespaces; the wasm runtime a new instance of
// the container's module (argv is the container's name followed by Cmd)
// with its env, mounts and memory limit. Exec returns the command's exit
// code once it has exited and its output has been written. When ctx ends
// first the command is killed (nothing of it stays behind) and Exec
// returns an error wrapping ctx.Err(). An unknown or not running container
// is an error wrapping ErrNotFound. Safe for concurrent use.
type StreamExecer interface {
	Exec(ctx context.Context, id string, opts ExecOptions) (int32, error)
}
