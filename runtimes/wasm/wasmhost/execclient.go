package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

var _ runtimes.StreamExecer = (*Client)(nil)

// Exec implements runtimes.StreamExecer by relaying to the host: one
// connection to the host's socket per command (first byte connExec),
// carrying the start frame, then the input and terminal sizes one way and
// the output, the start and the exit the other. The host runs the wasm
// runtime's Exec (a fresh instance of the container's module). When ctx
// ends the connection is closed, which kills the instance in the host, and
// Exec returns an error wrapping ctx.Err(). A host that ends the
// connection first gives an error wrapping ErrUnavailable; a host of a
// build without exec, one wrapping errors.ErrUnsupported.
func (c *Client) Exec(ctx context.Context, id string, opts runtimes.ExecOptions) (int32, error) {
	if len(opts.Cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: empty command", id)
	}
	if _, _, err := c.conn(ctx); err != nil { // starts a host when none answers
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	c.mu.Lock()
	pid := c.hello.PID
	c.mu.Unlock()
	fail := func(what string, err error) (int32, error) {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
		}
		return -1, fmt.Errorf("exec in %s: %s: %v: %w", id, what, err, runtimes.ErrUnavailable)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(c.opts.Host.Dir, SocketName))
	if err != nil {
		return fail("dial the wasm host", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // kills the command in the host
	defer stop()
	if _, err := conn.Write([]byte{connExec}); err != nil {
		return fail("write to the wasm host", err)
	}
	var ack [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(c.opts.StartTimeout))
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != connAck {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
		}
		return -1, fmt.Errorf("exec in %s: the wasm host (pid %d) does not serve exec (%v): it is of an older build, kept while it holds pods; drain the node and restart the agent to replace it: %w",
			id, pid, err, errors.ErrUnsupported)
	}
	_ = conn.SetReadDeadline(time.Time{})
	w := &frameWriter{conn: conn}
	st := execStart{ID: id, Cmd: opts.Cmd, TTY: opts.TTY, Stdin: opts.Stdin != nil}
	if opts.Size != nil {
		st.Width, st.Height = opts.Size.Width, opts.Size.Height
	}
	if err := w.writeJSON(frameStart, st); err != nil {
		return fail("send the command", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
	}()
	if opts.Stdin != nil {
		go pumpStdin(opts.Stdin, w) // may stay blocked in Read: the caller's to end
	}
	if opts.Resize != nil {
		wg.Go(func() {
			for {
				select {
				case s, ok := <-opts.Resize:
					if !ok || w.write(frameResize, resizeFrame(s)) != nil {
						return
					}
				case <-done:
					return
				}
			}
		})
	}
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if opts.Stdout != nil {
		stdout = opts.Stdout
	}
	if opts.Stderr != nil {
		stderr = opts.Stderr
	}
	br := newFrameReader(conn)
	started := false
	for {
		typ, b, err := readFrame(br)
		if err != nil {
			return fail("the wasm host connection ended", err)
		}
		switch typ {
		case frameStdout, frameStderr:
			out := stdout
			if typ == frameStderr {
				out = stderr
			}
			if _, err := out.Write(b); err != nil {
				return -1, fmt.Errorf("exec in %s: write output: %w", id, err)
			}
		case frameStarted:
			if !started && opts.OnStart != nil {
				opts.OnStart()
			}
			started = true
		case frameExit:
			var x execExit
			if err := json.Unmarshal(b, &x); err != nil {
				return -1, fmt.Errorf("exec in %s: decode the exit frame: %w", id, err)
			}
			if x.Err != nil {
				return x.Code, fromWire(x.Err)
			}
			return x.Code, nil
		default:
			return -1, fmt.Errorf("exec in %s: the wasm host sent an unknown frame %q", id, typ)
		}
	}
}

// pumpStdin sends in to the host in frames, then the end of input.
func pumpStdin(in io.Reader, w *frameWriter) {
	buf := make([]byte, execChunk)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if w.write(frameStdin, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			_ = w.write(frameStdin, nil)
			return
		}
	}
}
