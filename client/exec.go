package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/execwire"
)

// ExecIO is the client's side of a session.
type ExecIO struct {
	// Stdin is sent to the command (or connection); nil sends nothing.
	// Its end (io.EOF) is sent as end of input.
	Stdin io.Reader
	// Stdout and Stderr receive the output; nil discards.
	Stdout, Stderr io.Writer
	// Resize delivers terminal sizes (TTY sessions); may be nil.
	Resize <-chan api.TermSize
	// Started, when set, is called once the session runs.
	Started func()
}

// startTimeout bounds the wait for a session's first frame.
const startTimeout = 30 * time.Second

// Exec runs a session of kind (api.SessionExec, SessionAttach,
// SessionPortForward) and returns the remote exit code once it ended (0
// for a port-forward that ended cleanly, or an attach that detached at
// the end of sio.Stdin). For exec and attach, req.Stdin is set by whether
// sio.Stdin is. A refused session, or one that
// broke, is an error (*api.Status when the server said why). When ctx ends
// the session is closed, which kills the remote command.
func (c *Client) Exec(ctx context.Context, kind string, req api.ExecRequest, sio ExecIO) (int32, error) {
	subject := api.SubjectExec
	switch kind {
	case api.SessionAttach:
		subject = api.SubjectAttach
	case api.SessionPortForward:
		subject = api.SubjectPortForward
	}
	if kind != api.SessionPortForward {
		req.Stdin = sio.Stdin != nil
	}
	body, err := json.Marshal(req)
	if err != nil {
		return -1, err
	}
	nc := c.nc
	inbox := nc.NewRespInbox()
	// Room for every data frame a window allows, and then some for pings,
	// credits and the exit: a chan subscription drops what does not fit.
	frames := make(chan *nats.Msg, 2*api.ExecWindow/execwire.MinFrameCost+64)
	sub, err := nc.ChanSubscribe(inbox, frames)
	if err != nil {
		return -1, fmt.Errorf("%s: subscribe: %w", kind, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, 4*api.ExecWindow)
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Data: body}); err != nil {
		return -1, fmt.Errorf("%s: %w", kind, err)
	}

	sess := ""
	send := func(frame string, data []byte) error {
		return nc.PublishMsg(execwire.Msg(api.SubjectExecInput, sess, frame, data))
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := execwire.NewWindow(api.ExecWindow) // stdin credit
	defer window.Close()
	var closed bool
	closeRemote := func() {
		if sess != "" && !closed {
			closed = true
			_ = send(api.FrameClose, nil)
			_ = nc.Flush()
		}
	}
	defer closeRemote()

	idle := startTimeout
	timer := time.NewTimer(idle)
	defer timer.Stop()
	owed := 0 // output consumed and not yet credited
	var ping *time.Ticker
	var pingC <-chan time.Time
	stdout, stderr := sio.Stdout, sio.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-timer.C:
			if sess == "" {
				return -1, api.NewUnavailable("%s: no answer from the cluster within %s", kind, idle)
			}
			return -1, api.NewUnavailable("%s: session %s went silent for %s; the node or the apiserver is gone", kind, sess, idle)
		case <-pingC:
			_ = send(api.FramePing, nil)
		case m := <-frames:
			if err := ReplyError(m); err != nil {
				return -1, err
			}
			if sess == "" {
				sess = m.Header.Get(api.ExecSessionHeader)
			} else if m.Header.Get(api.ExecSessionHeader) != sess {
				continue
			}
			timer.Reset(idle)
			switch m.Header.Get(api.ExecFrameHeader) {
			case api.FrameStarted:
				var st api.ExecStarted
				if err := json.Unmarshal(m.Data, &st); err != nil || st.PingMillis <= 0 {
					return -1, fmt.Errorf("%s: malformed start frame", kind)
				}
				iv := time.Duration(st.PingMillis) * time.Millisecond
				idle = (api.ExecIdlePings + 2) * iv
				timer.Reset(idle)
				ping = time.NewTicker(iv)
				defer ping.Stop()
				pingC = ping.C
				if sio.Stdin != nil {
					go pumpStdin(sctx, sio.Stdin, window, send)
				}
				if sio.Resize != nil {
					go func() {
						for {
							select {
							case <-sctx.Done():
								return
							case sz := <-sio.Resize:
								b, _ := json.Marshal(sz)
								_ = send(api.FrameResize, b)
							}
						}
					}()
				}
				if sio.Started != nil {
					sio.Started()
				}
			case api.FrameStdout, api.FrameStderr:
				w := stdout
				if m.Header.Get(api.ExecFrameHeader) == api.FrameStderr {
					w = stderr
				}
				if _, err := w.Write(m.Data); err != nil {
					return -1, fmt.Errorf("%s: write output: %w", kind, err)
				}
				// Credit in batches of a quarter window: the sender keeps
				// at least three quarters, so it never waits on a batch.
				if owed += execwire.Cost(len(m.Data)); owed >= api.ExecWindow/4 || len(frames) == 0 {
					_ = nc.PublishMsg(execwire.CreditMsg(api.SubjectExecInput, sess, owed))
					owed = 0
				}
			case api.FrameCredit:
				window.Give(execwire.Credit(m))
			case api.FramePing:
			case api.FrameExit:
				closed = true
				var x api.ExecExit
				if err := json.Unmarshal(m.Data, &x); err != nil {
					return -1, fmt.Errorf("%s: malformed exit frame", kind)
				}
				if x.Error != nil {
					return -1, x.Error
				}
				return x.ExitCode, nil
			}
		}
	}
}

// pumpStdin sends r as stdin frames within the window, then end of input.
func pumpStdin(ctx context.Context, r io.Reader, window *execwire.Window, send func(string, []byte) error) {
	s := &execwire.Sender{Ctx: ctx, Window: window, Send: func(b []byte) error { return send(api.FrameStdin, b) }}
	buf := make([]byte, api.ExecChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			_ = send(api.FrameStdin, nil)
			return
		}
		if err != nil || ctx.Err() != nil {
			return
		}
	}
}
