package wasmhost

import (
	"net"
	"path/filepath"
	"testing"
)

// TestPeerGone: the host sees that the agent closed an exec connection
// without reading it, even with unread input queued on it.
func TestPeerGone(t *testing.T) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name   string
		unread []byte
	}{
		{"nothing unread", nil},
		{"input unread", make([]byte, 64<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent, err := net.Dial("unix", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer agent.Close()
			hostConn, err := ln.AcceptUnix()
			if err != nil {
				t.Fatal(err)
			}
			defer hostConn.Close()
			if tc.unread != nil {
				if _, err := agent.Write(tc.unread); err != nil {
					t.Fatal(err)
				}
			}
			if peerGone(hostConn) {
				t.Fatal("peerGone while the agent is connected")
			}
			agent.Close()
			if !peerGone(hostConn) {
				t.Error("peerGone is false after the agent closed the connection")
			}
		})
	}
}
