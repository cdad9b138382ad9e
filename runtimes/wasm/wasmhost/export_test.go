package wasmhost

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// HostExecs is how many exec commands the host of c runs now.
func HostExecs(ctx context.Context, c *Client) (int, error) {
	var r HelloReply
	if err := c.call(ctx, "Hello", HelloArgs{Call: callOf(ctx), Protocol: Protocol}, &r, true); err != nil {
		return 0, err
	}
	return r.Execs, nil
}

// StartRawExec starts cmd in container id of the host of dir on a raw exec
// connection, waits for its started frame and returns the connection: the
// test drops it as a dead agent would.
func StartRawExec(dir, id string, cmd []string) (net.Conn, error) {
	conn, err := net.Dial("unix", filepath.Join(dir, SocketName))
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	w := &frameWriter{conn: conn}
	var ack [1]byte
	if _, err := conn.Write([]byte{connExec}); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Read(ack[:]); err != nil || ack[0] != connAck {
		conn.Close()
		return nil, fmt.Errorf("no ack: %v", err)
	}
	if err := w.writeJSON(frameStart, execStart{ID: id, Cmd: cmd, Stdin: true}); err != nil {
		conn.Close()
		return nil, err
	}
	br := newFrameReader(conn)
	for {
		typ, b, err := readFrame(br)
		if err != nil {
			conn.Close()
			return nil, err
		}
		switch typ {
		case frameStarted:
			_ = conn.SetDeadline(time.Time{})
			return conn, nil
		case frameExit:
			conn.Close()
			return nil, fmt.Errorf("exited: %s", b)
		}
	}
}

// WriteRawFrame writes a frame header claiming n bytes of payload, and
// payload.
func WriteRawFrame(conn net.Conn, typ byte, n uint32, payload []byte) error {
	hdr := []byte{typ, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	_, err := conn.Write(append(hdr, payload...))
	return err
}
