package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Attach sessions (kyb attach): the client's stdin frames go to the
// container's own stdin (runtimes.Attacher, a stream the runtime keeps);
// the container's output from now on is its log file, followed from its
// end (woken by inotify on each write, polled as a safety net), sent as
// stdout frames (the log file
// holds stdout and stderr merged, as a terminal would). The session ends
// when the container exits (with its exit code), when the client's stdin
// ends on a container without stdinOnce (a detach: the container keeps
// running; exit 0), or when the client goes.

// maxAttachPoll is the longest pause between two reads of a quiet log
// file during an attach (an interactive session, so shorter than the log
// publisher's).
const maxAttachPoll = 250 * time.Millisecond

// attachTail is how long output is still read after the container exited
// and the log stopped growing (the log driver can lag the exit).
const attachTail = 3

// attach runs an attach session in target t.
func (s *execSession) attach(t *execTarget) (int32, error) {
	st := s.start
	if st.Stdin && !t.spec.Stdin {
		return -1, api.NewBadRequest("container %s was not created with stdin: true; attach without -i for its output", st.Container)
	}
	if t.logPath == "" {
		return -1, api.NewBadRequest("container %s has no log file to attach to", st.Container)
	}
	att, _ := t.rt.(runtimes.Attacher)
	if (st.Stdin || st.TTY && t.spec.TTY) && att == nil {
		return -1, api.NewBadRequest("attach -i: the %s runtime cannot write to a container's stdin", t.rtName)
	}
	// Output from now on: the offset is taken before any input is sent,
	// so the echo of the first byte is after it.
	var offset int64
	if fi, err := os.Stat(t.logPath); err == nil {
		offset = fi.Size()
	}
	exited, err := t.rt.WaitContainer(s.ctx, t.id)
	if err != nil {
		return -1, fmt.Errorf("attach: wait for container %s: %w", st.Container, err)
	}
	var stdin io.WriteCloser
	if st.Stdin {
		if stdin, err = att.AttachStdin(s.ctx, t.id); err != nil {
			return -1, attachErr(st.Container, err)
		}
		defer stdin.Close()
	}
	s.started()

	detached := make(chan struct{})
	if stdin != nil {
		once := t.spec.StdinOnce
		go func() {
			_, err := io.Copy(stdin, s.stdin)
			switch {
			case err != nil:
				s.cancel(fmt.Errorf("write to the container's stdin: %w", err))
			case once:
				// End of the client's input is the container's: it reads
				// end of input, and the session goes on until it exits.
				_ = stdin.Close()
			default:
				close(detached)
			}
		}()
	}
	if st.TTY && t.spec.TTY {
		if st.Size != nil {
			_ = att.ResizeTTY(s.ctx, t.id, runtimes.TermSize{Width: st.Size.Width, Height: st.Size.Height})
		}
		go func() {
			for {
				select {
				case <-s.ctx.Done():
					return
				case sz := <-s.resize:
					if err := att.ResizeTTY(s.ctx, t.id, sz); err != nil {
						s.es.a.log.Debug("attach: resize", "session", st.Session, "err", err)
					}
				}
			}
		}()
	}
	return s.follow(t.logPath, offset, exited, detached)
}

// follow sends what is appended to path after offset as stdout frames
// until the container exits (its exit code, after the rest of its
// output), detached is closed (0) or the session ends (an error).
func (s *execSession) follow(path string, offset int64, exited <-chan runtimes.ExitResult, detached <-chan struct{}) (int32, error) {
	out := s.sender(api.FrameStdout)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, api.ExecChunk)
	// drain sends what the file holds past offset; it reports whether
	// there was anything.
	drain := func() (bool, error) {
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return false, nil
				}
				return false, fmt.Errorf("attach: open the log: %w", err)
			}
		}
		got := false
		for {
			n, err := f.ReadAt(buf, offset)
			if n > 0 {
				got = true
				offset += int64(n)
				if _, werr := out.Write(buf[:n]); werr != nil {
					return got, werr
				}
			}
			if err == io.EOF || n == 0 {
				return got, nil
			}
			if err != nil {
				return got, fmt.Errorf("attach: read the log: %w", err)
			}
		}
	}
	// inotify wakes the follower on each write; polling stays as the
	// safety net (and the only way where the file cannot be watched).
	changed, stopWatch := fileChanges(path)
	defer stopWatch()
	base := s.es.a.cfg.LogPollInterval
	interval := base
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		grew, err := drain()
		if err != nil {
			return -1, err
		}
		if grew {
			interval = base
		} else {
			interval = min(interval*2, max(maxAttachPoll, base))
		}
		timer.Reset(interval)
		select {
		case <-s.ctx.Done():
			return -1, context.Cause(s.ctx)
		case <-detached:
			_, _ = drain()
			return 0, nil
		case x := <-exited:
			if x.Err != nil {
				return -1, fmt.Errorf("attach: wait for the container: %w", x.Err)
			}
			// The log driver may lag the exit: read on until the file has
			// not grown for attachTail polls.
			for quiet := 0; quiet < attachTail; {
				grew, err := drain()
				if err != nil {
					return -1, err
				}
				if grew {
					quiet = 0
				} else {
					quiet++
				}
				select {
				case <-s.ctx.Done():
					return -1, context.Cause(s.ctx)
				case <-time.After(base):
				}
			}
			return x.ExitCode, nil
		case <-changed:
		case <-timer.C:
		}
	}
}

// attachErr is the Status of a runtime's refusal to attach.
func attachErr(container string, err error) error {
	switch {
	case errors.Is(err, runtimes.ErrNoStdin):
		return api.NewBadRequest("container %s was not created with stdin: true; attach without -i for its output", container)
	case errors.Is(err, runtimes.ErrStdinClosed):
		return api.NewBadRequest("container %s has stdinOnce: true and its stdin was closed when its first attach ended; attach without -i for its output", container)
	}
	return fmt.Errorf("attach to container %s: %w", container, err)
}
