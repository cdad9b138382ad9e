package execwire

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// ErrClosed is returned by a Window or Inbox that was closed.
var ErrClosed = errors.New("session closed")

// ErrOverrun is returned by Inbox.Push when the sender sent more than its
// credit allows: a broken or hostile peer.
var ErrOverrun = errors.New("peer sent beyond its credit window")

// MinFrameCost is what a data frame costs in credit at least: with it a
// window holds at most api.ExecWindow/MinFrameCost frames in flight, so a
// sender of many tiny writes cannot flood the receiver's message queue.
const MinFrameCost = 1024

// Cost is the credit a data frame of n bytes costs.
func Cost(n int) int { return max(n, MinFrameCost) }

// Window is a sender's credit: how many data bytes it may still send.
type Window struct {
	mu     sync.Mutex
	avail  int
	closed bool
	wake   chan struct{}
}

// NewWindow returns a Window holding n bytes of credit.
func NewWindow(n int) *Window { return &Window{avail: n, wake: make(chan struct{})} }

// Take waits until some credit is available and takes up to n bytes of
// it, returning how much it took; ctx ending or Close end the wait.
func (w *Window) Take(ctx context.Context, n int) (int, error) {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return 0, ErrClosed
		}
		if w.avail > 0 {
			k := min(n, w.avail)
			w.avail -= k
			w.mu.Unlock()
			return k, nil
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// TakeAll waits until n bytes of credit (at most api.ExecWindow) are
// available and takes them; ctx ending or Close end the wait.
func (w *Window) TakeAll(ctx context.Context, n int) error {
	n = min(n, api.ExecWindow)
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.avail >= n {
			w.avail -= n
			w.mu.Unlock()
			return nil
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Give returns n bytes of credit (from a FrameCredit), never beyond
// api.ExecWindow.
func (w *Window) Give(n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	if w.closed { // a credit after the session ended
		w.mu.Unlock()
		return
	}
	w.avail = min(w.avail+n, api.ExecWindow)
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// Close ends every wait.
func (w *Window) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.wake)
	}
	w.mu.Unlock()
}

// Inbox is a receiver's buffer of data frames: at most api.ExecWindow
// bytes, read by one reader; every api.ExecWindow/4 bytes read (or when it
// drains) it calls credit with the bytes consumed since the last call.
type Inbox struct {
	mu     sync.Mutex
	buf    []byte
	eof    bool
	closed bool
	owed   int
	wake   chan struct{}
	credit func(int)
}

// NewInbox returns an empty Inbox granting credit through credit.
func NewInbox(credit func(int)) *Inbox { return &Inbox{credit: credit, wake: make(chan struct{})} }

// Push appends one data frame; an empty one is end of input. credit may
// be called (with the frame's overhead, Cost beyond its bytes) before it
// returns.
func (b *Inbox) Push(p []byte) error {
	b.mu.Lock()
	if b.closed || b.eof {
		b.mu.Unlock()
		return ErrClosed
	}
	overhead := 0
	if len(p) == 0 {
		b.eof = true
	} else {
		if len(b.buf)+len(p) > api.ExecWindow {
			b.mu.Unlock()
			return ErrOverrun
		}
		b.buf = append(b.buf, p...)
		// The frame's message is off the queue: what it cost beyond
		// its bytes is credited now, its bytes as they are read.
		overhead = Cost(len(p)) - len(p)
	}
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
	if overhead > 0 && b.credit != nil {
		b.credit(overhead)
	}
	return nil
}

// Close ends reads with ErrClosed.
func (b *Inbox) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.wake)
	}
	b.mu.Unlock()
}

// Read implements io.Reader: it waits for data, end of input (io.EOF) or
// Close.
func (b *Inbox) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if len(b.buf) > 0 {
			n := copy(p, b.buf)
			b.buf = b.buf[n:]
			if len(b.buf) == 0 {
				b.buf = nil
			}
			b.owed += n
			owed := 0
			if b.owed >= api.ExecWindow/4 || len(b.buf) == 0 {
				owed, b.owed = b.owed, 0
			}
			b.mu.Unlock()
			if owed > 0 && b.credit != nil {
				b.credit(owed)
			}
			return n, nil
		}
		if b.closed {
			b.mu.Unlock()
			return 0, ErrClosed
		}
		if b.eof {
			b.mu.Unlock()
			return 0, io.EOF
		}
		wake := b.wake
		b.mu.Unlock()
		<-wake
	}
}

// Msg builds one frame of session on subject.
func Msg(subject, session, frame string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(api.ExecSessionHeader, session)
	m.Header.Set(api.ExecFrameHeader, frame)
	m.Data = data
	return m
}

// CreditMsg builds a FrameCredit of n bytes.
func CreditMsg(subject, session string, n int) *nats.Msg {
	m := Msg(subject, session, api.FrameCredit, nil)
	m.Header.Set(api.ExecCreditHeader, strconv.Itoa(n))
	return m
}

// Credit returns the bytes a FrameCredit grants (0 when malformed).
func Credit(m *nats.Msg) int {
	n, err := strconv.Atoi(m.Header.Get(api.ExecCreditHeader))
	if err != nil || n < 0 || n > api.ExecWindow {
		return 0
	}
	return n
}
