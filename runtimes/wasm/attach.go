package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Attach (runtimes.Attacher): a command module created with Stdin reads a
// pipe the runtime keeps (stdinPipe) for as long as it runs; attachments
// write to it. A module has no terminal: ResizeTTY is ErrNoTTY (validation
// refuses tty for wasm pods).

var _ runtimes.Attacher = (*Runtime)(nil)

// stdinChunk bounds one buffered piece of stdin; stdinDepth pieces are
// buffered at most (64 KiB, as a kernel pipe).
const (
	stdinChunk = 4 << 10
	stdinDepth = 16
)

// stdinPipe is a running module's stdin: bounded, written by any number of
// attachments, read by the module.
type stdinPipe struct {
	once    bool // StdinOnce: the first attachment's end is end of input
	data    chan []byte
	eof     chan struct{} // closed: end of input once data is read
	dead    chan struct{} // closed: the module ended; writes fail
	mu      sync.Mutex
	ended   bool // eof closed
	over    bool // dead closed
	pending []byte
}

func newStdinPipe(once bool) *stdinPipe {
	return &stdinPipe{once: once, data: make(chan []byte, stdinDepth), eof: make(chan struct{}), dead: make(chan struct{})}
}

// Read is the module's read of its stdin: it blocks until an attachment
// writes, stdin is closed (io.EOF) or the module is stopped.
func (p *stdinPipe) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		select {
		case p.pending = <-p.data:
		default:
			select {
			case p.pending = <-p.data:
			case <-p.dead:
				return 0, io.EOF
			case <-p.eof:
				select {
				case p.pending = <-p.data:
				default:
					return 0, io.EOF
				}
			}
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

// closeInput ends the module's input (after what is buffered).
func (p *stdinPipe) closeInput() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ended {
		p.ended = true
		close(p.eof)
	}
}

// stop ends the pipe for good: the module ended, or is being stopped (a
// module blocked reading stdin then reads end of input).
func (p *stdinPipe) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.over {
		p.over = true
		close(p.dead)
	}
}

func (p *stdinPipe) closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

// attachment is one writer to a stdinPipe.
type attachment struct {
	p    *stdinPipe
	done chan struct{}
	once sync.Once
}

func (a *attachment) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := b[n:min(len(b), n+stdinChunk)]
		select {
		case <-a.p.eof:
			return n, fmt.Errorf("write stdin: %w", runtimes.ErrStdinClosed)
		default:
		}
		select {
		case a.p.data <- append([]byte(nil), c...):
			n += len(c)
		case <-a.done:
			return n, io.ErrClosedPipe
		case <-a.p.dead:
			return n, io.ErrClosedPipe
		case <-a.p.eof:
			return n, fmt.Errorf("write stdin: %w", runtimes.ErrStdinClosed)
		}
	}
	return n, nil
}

// Close detaches; for a StdinOnce module it ends the module's input.
func (a *attachment) Close() error {
	a.once.Do(func() {
		close(a.done)
		if a.p.once {
			a.p.closeInput()
		}
	})
	return nil
}

func (r *Runtime) stdinOf(id string) *stdinPipe {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdins[id]
}

// AttachStdin implements runtimes.Attacher.
func (r *Runtime) AttachStdin(ctx context.Context, id string) (io.WriteCloser, error) {
	c, _, err := r.Running(id)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	if !c.Config.Stdin {
		return nil, fmt.Errorf("attach to %s: %w", id, runtimes.ErrNoStdin)
	}
	p := r.stdinOf(id)
	if p == nil {
		return nil, fmt.Errorf("attach to %s: %w", id, runtimes.NotFoundf("running module"))
	}
	if p.closed() {
		return nil, fmt.Errorf("attach to %s: %w", id, runtimes.ErrStdinClosed)
	}
	return &attachment{p: p, done: make(chan struct{})}, nil
}

// ResizeTTY implements runtimes.Attacher: a module has no terminal.
func (r *Runtime) ResizeTTY(ctx context.Context, id string, size runtimes.TermSize) error {
	if _, _, err := r.Running(id); err != nil {
		return fmt.Errorf("resize %s: %w", id, err)
	}
	return fmt.Errorf("resize %s: %w", id, runtimes.ErrNoTTY)
}

// errStdinForWAGI: a WAGI container's stdin is each request's body.
var errStdinForWAGI = errors.New("stdin: a container that serves WAGI ports reads each request's body on stdin; it cannot also be attached to")
