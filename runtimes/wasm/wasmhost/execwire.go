package wasmhost

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/kybernetes/kybernetes/runtimes"
)

// An exec connection (first byte connExec, answered connAck) carries
// frames: a type byte, the payload's length (uint32, big endian), the
// payload. The agent sends frameStart first, then frameStdin and
// frameResize; the host sends frameStarted, frameStdout, frameStderr and,
// last, frameExit, then closes the connection. Flow control is the
// socket's own: a side that does not read makes the other's writes block.
const (
	frameStart   = 'S' // agent: JSON of execStart
	frameStdin   = 'I' // agent: input bytes; an empty payload is the end of input
	frameResize  = 'R' // agent: width and height, uint16 big endian each
	frameStarted = 'G' // host: the command runs (OnStart)
	frameStdout  = 'O' // host: output bytes
	frameStderr  = 'E' // host: error output bytes
	frameExit    = 'X' // host: JSON of execExit
)

const (
	// maxExecFrame bounds a frame's payload; a longer one ends the
	// connection (and the command).
	maxExecFrame = 1 << 20
	// execChunk is the most a data frame carries.
	execChunk = 32 << 10
	// stdinQueued is how many stdin frames the host holds that the
	// command has not read yet; past that, the host stops reading the
	// connection (the agent's writes block).
	stdinQueued = 16
)

// execStart is the first frame of an exec connection.
type execStart struct {
	ID     string   `json:"id"`
	Cmd    []string `json:"cmd"`
	TTY    bool     `json:"tty,omitempty"`
	Width  uint16   `json:"width,omitempty"`
	Height uint16   `json:"height,omitempty"`
	// Stdin says the agent sends input; without it the command reads
	// an empty input.
	Stdin bool `json:"stdin,omitempty"`
	// Attach: the connection writes to the running container's own stdin
	// (runtimes.Attacher) instead of running Cmd.
	Attach bool `json:"attach,omitempty"`
}

// execExit is the last frame of an exec connection: the command's exit
// code, or the error that ended Exec.
type execExit struct {
	Code int32      `json:"code"`
	Err  *WireError `json:"err,omitempty"`
}

// readFrame reads one frame whose payload is at most maxExecFrame bytes.
func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxExecFrame {
		return 0, nil, fmt.Errorf("exec frame %q of %d bytes is over %d", hdr[0], n, maxExecFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, fmt.Errorf("exec frame %q: %w", hdr[0], err)
	}
	return hdr[0], b, nil
}

// frameWriter writes whole frames to a connection, one at a time.
type frameWriter struct {
	mu   sync.Mutex
	conn net.Conn
	// failed, when set, is called once a write fails.
	failed func()
}

func (w *frameWriter) write(typ byte, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(b)))
	_, err := (&net.Buffers{hdr[:], b}).WriteTo(w.conn)
	if err != nil && w.failed != nil {
		w.failed()
	}
	return err
}

func (w *frameWriter) writeJSON(typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.write(typ, b)
}

// stream is an io.Writer of data frames of one type.
type stream struct {
	w   *frameWriter
	typ byte
}

func (s stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), execChunk)]
		if err := s.w.write(s.typ, c); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}

// resizeFrame is the payload of a frameResize.
func resizeFrame(s runtimes.TermSize) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], s.Width)
	binary.BigEndian.PutUint16(b[2:], s.Height)
	return b[:]
}

func newFrameReader(conn net.Conn) *bufio.Reader { return bufio.NewReaderSize(conn, 64<<10) }
