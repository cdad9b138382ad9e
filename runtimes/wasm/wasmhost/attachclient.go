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

var _ runtimes.Attacher = (*Client)(nil)

// AttachStdin implements runtimes.Attacher by relaying to the host: one
// exec connection whose start frame says Attach; the host writes its stdin
// frames to the module's stdin pipe (package wasm), which the host keeps,
// so an attachment outlives nothing the agent holds. Close sends the end
// of input and waits (briefly) for the host to detach, so that what was
// written reaches the module first.
func (c *Client) AttachStdin(ctx context.Context, id string) (io.WriteCloser, error) {
	if _, _, err := c.conn(ctx); err != nil { // starts a host when none answers
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(c.opts.Host.Dir, SocketName))
	if err != nil {
		return nil, fmt.Errorf("attach to %s: dial the wasm host: %v: %w", id, err, runtimes.ErrUnavailable)
	}
	fail := func(err error) (io.WriteCloser, error) {
		conn.Close()
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	_ = conn.SetDeadline(time.Now().Add(c.opts.StartTimeout))
	if _, err := conn.Write([]byte{connExec}); err != nil {
		return fail(fmt.Errorf("write to the wasm host: %v: %w", err, runtimes.ErrUnavailable))
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != connAck {
		return fail(fmt.Errorf("the wasm host does not serve exec (%v): it is of an older build: %w", err, errors.ErrUnsupported))
	}
	w := &frameWriter{conn: conn}
	if err := w.writeJSON(frameStart, execStart{ID: id, Attach: true, Stdin: true}); err != nil {
		return fail(fmt.Errorf("send the start: %v: %w", err, runtimes.ErrUnavailable))
	}
	br := newFrameReader(conn)
	typ, b, err := readFrame(br)
	if err != nil {
		return fail(fmt.Errorf("the wasm host connection ended: %v: %w", err, runtimes.ErrUnavailable))
	}
	_ = conn.SetDeadline(time.Time{})
	switch typ {
	case frameStarted:
	case frameExit:
		var x execExit
		if json.Unmarshal(b, &x) == nil && x.Err != nil {
			return fail(fromWire(x.Err))
		}
		return fail(errors.New("the wasm host ended the attachment at once (an older build runs attach as exec)"))
	default:
		return fail(fmt.Errorf("the wasm host sent an unknown frame %q", typ))
	}
	a := &hostAttachment{conn: conn, w: w, exited: make(chan struct{})}
	go func() {
		defer close(a.exited)
		for {
			if _, _, err := readFrame(br); err != nil {
				return
			}
		}
	}()
	return a, nil
}

// hostAttachment is an attachment relayed to the wasm host.
type hostAttachment struct {
	conn   net.Conn
	w      *frameWriter
	exited chan struct{} // the host ended the connection
	once   sync.Once
}

func (a *hostAttachment) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := b[n:min(len(b), n+execChunk)]
		if err := a.w.write(frameStdin, c); err != nil {
			return n, fmt.Errorf("write stdin to the wasm host: %w", err)
		}
		n += len(c)
	}
	return n, nil
}

// attachCloseWait bounds how long Close waits for the host to detach.
const attachCloseWait = 5 * time.Second

func (a *hostAttachment) Close() error {
	a.once.Do(func() {
		_ = a.conn.SetWriteDeadline(time.Now().Add(attachCloseWait))
		if a.w.write(frameStdin, nil) == nil {
			select {
			case <-a.exited:
			case <-time.After(attachCloseWait):
			}
		}
		a.conn.Close()
	})
	return nil
}

// ResizeTTY implements runtimes.Attacher: a module has no terminal.
func (c *Client) ResizeTTY(ctx context.Context, id string, size runtimes.TermSize) error {
	return fmt.Errorf("resize %s: %w", id, runtimes.ErrNoTTY)
}
