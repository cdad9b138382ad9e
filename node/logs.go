package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
)

// Headers on every published log line.
const (
	HeaderLogStream  = "Kyb-Stream"         // stdout or stderr, when the log file says
	HeaderLogAttempt = api.LogAttemptHeader // the container's restart attempt
	HeaderLogTime    = "Kyb-Time"           // RFC 3339 time of the line, when the log file says
)

// offsetSuffix names the file next to a log file that holds how many of its
// bytes have been published.
const offsetSuffix = ".offset"

// maxLogLine bounds one published line; longer lines are split.
const maxLogLine = 64 << 10

// logPublisher publishes container log lines on
// kyb.logs.<namespace>.<pod>.<container>.
//
// Lines go out with JetStream async publish and a message ID
// (<uid>/<container>/<attempt>/<offset>), so the KYB_LOGS stream acknowledges
// them and drops the duplicates a retry or an agent restart may send. The
// offset next to the log file only advances once every line before it is
// acknowledged. When no stream captures the subject (no responders), lines
// are published on plain NATS (for live readers) and the offset advances;
// the stream is tried again after streamRecheck.
type logPublisher struct {
	a        *Agent
	mu       sync.Mutex
	noStream time.Time // when the stream was last found absent
}

const streamRecheck = 10 * time.Second

func (p *logPublisher) streamAbsent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.noStream.IsZero() && time.Since(p.noStream) < streamRecheck
}

func (p *logPublisher) markAbsent() {
	p.mu.Lock()
	p.noStream = time.Now()
	p.mu.Unlock()
}

// tailer follows one container attempt's log file.
type tailer struct {
	p       *logPublisher
	subject string
	idBase  string
	attempt string
	path    string
	stopc   chan struct{} // closed: drain once more, then end
	abortc  chan struct{} // closed: end now
	done    chan struct{}
	once    sync.Once
	aonce   sync.Once

	f       *os.File
	offset  int64
	size    int64  // the file's size at the last read
	partial []byte // a CRI partial line waiting for its end
}

// tail starts following path from its saved offset until finish or abort.
func (p *logPublisher) tail(ctx context.Context, pod *api.Pod, container string, attempt int32, path string) *tailer {
	t := &tailer{
		p:       p,
		subject: api.LogSubject(token(p.a.cfg.Name), token(pod.Namespace), token(pod.Name), token(container)),
		idBase:  pod.UID + "/" + container + "/" + strconv.Itoa(int(attempt)) + "/",
		attempt: strconv.Itoa(int(attempt)),
		path:    path,
		stopc:   make(chan struct{}),
		abortc:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	t.offset = readInt(path + offsetSuffix)
	p.a.wg.Go(func() { t.run(ctx) })
	return t
}

// token makes s usable as one subject token.
func token(s string) string {
	return strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_").Replace(s)
}

func (t *tailer) finish() { t.once.Do(func() { close(t.stopc) }) }
func (t *tailer) abort()  { t.aonce.Do(func() { close(t.abortc) }) }

// wait waits up to d for the tailer to end.
func (t *tailer) wait(d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-t.done:
	case <-tm.C:
	}
}

func (t *tailer) run(ctx context.Context) {
	defer close(t.done)
	defer func() {
		if t.f != nil {
			t.f.Close()
		}
	}()
	// Poll every LogPollInterval while the file grows; a quiet file is
	// polled less and less often, down to once every maxQuietPoll.
	base := t.p.a.cfg.LogPollInterval
	interval := base
	timer := time.NewTimer(interval)
	defer timer.Stop()
	stopc := t.stopc     // nil once stopping: a closed channel would be ready on every pass
	var giveUp time.Time // a final drain that cannot publish ends at this time
	for {
		stopping := stopc == nil
		grew, err := t.drain(ctx, stopping)
		if stopping && (err == nil || time.Now().After(giveUp)) {
			if err != nil {
				t.p.a.log.Warn("log lines of an ended container could not be published", "subject", t.subject, "err", err)
			}
			return
		}
		if grew && err == nil {
			interval = base
		} else {
			interval = min(interval*2, max(maxQuietPoll, base))
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return
		case <-t.abortc:
			return
		case <-stopc:
			stopc = nil
			giveUp = time.Now().Add(finalDrainPatience)
		case <-timer.C:
		}
	}
}

// maxQuietPoll is the longest pause between two reads of a quiet log file.
const maxQuietPoll = time.Second

// finalDrainPatience is how long the last lines of an ended container are
// retried while they cannot be published (the connection is down).
const finalDrainPatience = 10 * time.Minute

// drain publishes every complete line after the offset (and, when final,
// the last incomplete one) and saves the new offset. It reports whether
// the file had grown or lines were published, so a file that only ends in
// an incomplete line is polled less often, like a quiet one.
func (t *tailer) drain(ctx context.Context, final bool) (bool, error) {
	if t.f == nil {
		f, err := os.Open(t.path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return false, err
		}
		t.f = f
	}
	fi, err := t.f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() < t.offset {
		t.offset = 0 // truncated
	}
	if fi.Size() == t.offset {
		return false, nil
	}
	grew := fi.Size() != t.size
	t.size = fi.Size()
	buf := make([]byte, min(fi.Size()-t.offset, 4<<20))
	n, err := t.f.ReadAt(buf, t.offset)
	if err != nil && err != io.EOF {
		return true, err
	}
	buf = buf[:n]
	var msgs []*nats.Msg
	var ids []string
	consumed := 0
	for consumed < len(buf) {
		rest := buf[consumed:]
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		switch {
		case i >= 0 && i <= maxLogLine:
			line = rest[:i]
			consumed += i + 1
		case len(rest) > maxLogLine:
			line = rest[:maxLogLine]
			consumed += maxLogLine
		case final:
			line = rest
			consumed += len(rest)
		default:
			i = -2
		}
		if i == -2 {
			break
		}
		m := t.message(line)
		if m == nil {
			continue
		}
		msgs = append(msgs, m)
		ids = append(ids, t.idBase+strconv.FormatInt(t.offset+int64(consumed), 10))
	}
	if err := t.publish(ctx, msgs, ids); err != nil {
		return true, err
	}
	t.offset += int64(consumed)
	// A lost offset only means lines are sent again, and the stream drops
	// them by message ID; the pod's directory may be gone already.
	_ = os.WriteFile(t.path+offsetSuffix, []byte(strconv.FormatInt(t.offset, 10)), 0o644)
	return grew || consumed > 0, nil
}

// message turns one line of the log file into a message. Lines in the CRI
// log format ("<time> <stream> <P|F> <text>") give their stream and time;
// other lines are published as they are. It returns nil for the first parts
// of a CRI partial line.
func (t *tailer) message(line []byte) *nats.Msg {
	m := nats.NewMsg(t.subject)
	m.Header.Set(HeaderLogAttempt, t.attempt)
	if ts, rest, ok := bytes.Cut(line, []byte(" ")); ok {
		if tm, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			if stream, rest, ok := bytes.Cut(rest, []byte(" ")); ok && (string(stream) == "stdout" || string(stream) == "stderr") {
				if tag, text, ok := bytes.Cut(rest, []byte(" ")); ok && (string(tag) == "P" || string(tag) == "F") {
					if string(tag) == "P" {
						t.partial = append(t.partial, text...)
						return nil
					}
					m.Header.Set(HeaderLogStream, string(stream))
					m.Header.Set(HeaderLogTime, tm.UTC().Format(time.RFC3339Nano))
					m.Data = append(t.partial, text...)
					t.partial = nil
					return m
				}
			}
		}
	}
	m.Data = bytes.Clone(line)
	return m
}

// publish sends msgs and waits for the stream to acknowledge all of them.
func (t *tailer) publish(ctx context.Context, msgs []*nats.Msg, ids []string) error {
	if len(msgs) == 0 {
		return nil
	}
	nc := t.p.a.nc
	if !nc.IsConnected() {
		// Do not fill nats.go's reconnect buffer with lines that will be
		// read again from the file once connected.
		return errors.New("publish log lines: not connected")
	}
	if t.p.streamAbsent() {
		for _, m := range msgs {
			if err := nc.PublishMsg(m); err != nil {
				return fmt.Errorf("publish log line: %w", err)
			}
		}
		return nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for i, m := range msgs {
		f, err := t.p.a.js.PublishMsgAsync(m, jetstream.WithMsgID(ids[i]))
		if err != nil {
			return fmt.Errorf("publish log line: %w", err)
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(t.p.a.cfg.RequestTimeout)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				// Nobody stores logs: publish for live readers and move on.
				// Copies without the message ID: the msgs themselves may
				// still be republished by the client's retries of the
				// other futures, so they are not changed.
				t.p.markAbsent()
				for _, m := range msgs {
					c := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
					for k, v := range m.Header {
						if k != jetstream.MsgIDHeader {
							c.Header[k] = v
						}
					}
					_ = nc.PublishMsg(c)
				}
				return nil
			}
			return fmt.Errorf("publish log line: %w", err)
		case <-timeout.C:
			return errors.New("publish log lines: no acknowledgement in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
