package wasmhost

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kybernetes/kybernetes/runtimes"
)

// serveExec serves one exec connection (first byte connExec): it runs the
// command of the start frame with the wasm runtime's Exec, relays its
// input and output, and sends its exit. When the connection drops (the
// agent's ctx ended, or the agent died) the command is killed.
func (h *host) serveExec(conn net.Conn) {
	if _, err := conn.Write([]byte{connAck}); err != nil {
		return
	}
	br := newFrameReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := readFrame(br)
	if err != nil || typ != frameStart {
		h.log.Warn("wasm host: an exec connection without a start frame", "type", typ, "err", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &frameWriter{conn: conn, failed: cancel}
	var st execStart
	if err := json.Unmarshal(b, &st); err != nil {
		_ = w.writeJSON(frameExit, execExit{Code: -1, Err: toWire(fmt.Errorf("exec: decode the start frame: %w", err))})
		return
	}
	in := &stdinQueue{ch: make(chan []byte, stdinQueued), done: ctx.Done()}
	resize := make(chan runtimes.TermSize, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // ends the reader (with the connection's close)
	wg.Go(func() { h.readExecInput(ctx, cancel, conn, br, in, resize) })
	opts := runtimes.ExecOptions{
		Cmd: st.Cmd, Stdout: stream{w, frameStdout}, Stderr: stream{w, frameStderr},
		TTY: st.TTY, Resize: resize,
		OnStart: func() { _ = w.write(frameStarted, nil) },
	}
	if st.Stdin {
		opts.Stdin = in
	}
	if st.Width > 0 || st.Height > 0 {
		opts.Size = &runtimes.TermSize{Width: st.Width, Height: st.Height}
	}
	if st.Attach {
		h.serveAttach(ctx, st.ID, in, w)
		_ = conn.Close()
		return
	}
	h.execs.Add(1)
	code, err := h.rt.Exec(ctx, st.ID, opts)
	h.execs.Add(-1)
	_ = w.writeJSON(frameExit, execExit{Code: code, Err: toWire(err)})
	// Closing the connection ends the reader; the agent reads the exit
	// frame before the end of the stream.
	_ = conn.Close()
}

// readExecInput reads the agent's frames until the connection ends, which
// cancels the command.
func (h *host) readExecInput(ctx context.Context, cancel context.CancelFunc, conn net.Conn, r io.Reader, in *stdinQueue, resize chan runtimes.TermSize) {
	defer cancel()
	eof := false
	for {
		typ, b, err := readFrame(r)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				h.log.Warn("wasm host: exec connection", "err", err)
			}
			return
		}
		switch typ {
		case frameStdin:
			if eof {
				continue
			}
			if len(b) == 0 {
				eof = true
				close(in.ch)
				continue
			}
			if !queueStdin(ctx, conn, in.ch, b) {
				return
			}
		case frameResize:
			if len(b) != 4 {
				h.log.Warn("wasm host: exec resize frame of a wrong size", "bytes", len(b))
				return
			}
			s := runtimes.TermSize{Width: binary.BigEndian.Uint16(b[:2]), Height: binary.BigEndian.Uint16(b[2:])}
			select {
			case resize <- s:
			default: // a module has no terminal: the newest size is enough
			}
		default:
			h.log.Warn("wasm host: exec connection: unknown frame", "type", typ)
			return
		}
	}
}

// queueStdin queues b for the command. While the queue is full (the
// command does not read its input) it checks that the agent is still
// connected: the connection is not read then, so its end would go
// unnoticed. It returns false when the command or the connection ended.
func queueStdin(ctx context.Context, conn net.Conn, ch chan<- []byte, b []byte) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case ch <- b:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			if peerGone(conn) {
				return false
			}
		}
	}
}

// peerGone says whether the other end of a unix connection closed it,
// without reading from it.
func peerGone(conn net.Conn) bool {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	if err := raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(fds, 0)
		gone = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	}); err != nil {
		return true
	}
	return gone
}

// stdinQueue is the command's input: the agent's stdin frames, in order;
// io.EOF after the agent's end of input or when the command ends.
type stdinQueue struct {
	ch   chan []byte
	done <-chan struct{}
	cur  []byte
}

func (q *stdinQueue) Read(p []byte) (int, error) {
	for len(q.cur) == 0 {
		select {
		case b, ok := <-q.ch:
			if !ok {
				return 0, io.EOF
			}
			q.cur = b
		case <-q.done:
			return 0, io.EOF
		}
	}
	n := copy(p, q.cur)
	q.cur = q.cur[n:]
	return n, nil
}

// serveAttach writes the agent's input to running container id's own
// stdin until the agent's end of input or the connection's end, then
// detaches (which ends a StdinOnce module's input) and sends the exit.
func (h *host) serveAttach(ctx context.Context, id string, in io.Reader, w *frameWriter) {
	sw, err := h.rt.AttachStdin(ctx, id)
	if err != nil {
		_ = w.writeJSON(frameExit, execExit{Code: -1, Err: toWire(err)})
		return
	}
	stop := context.AfterFunc(ctx, func() { sw.Close() }) // ends a blocked write
	defer stop()
	_ = w.write(frameStarted, nil)
	_, err = io.Copy(sw, in)
	if cerr := sw.Close(); err == nil {
		err = cerr
	}
	_ = w.writeJSON(frameExit, execExit{Err: toWire(err)})
}
