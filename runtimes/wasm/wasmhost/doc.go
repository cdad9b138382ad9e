// Package wasmhost runs a node's wasm modules in a process that outlives
// the agent, and gives the agent a runtimes.Runtime that talks to it.
//
// The host (`kyb wasm-host --dir DIR`, Serve) runs the wasm runtime of
// package wasm, unchanged: WAGI listeners, log files, exit codes and state
// files all live there. The agent's side (Client) finds the host of DIR
// and adopts it, or starts one detached (its own session and process
// group, as containerd starts its shims), so that kill -9 of the agent
// stops no module; the agent's usual resync then adopts the running
// containers, as it adopts containerd's.
//
// Protocol: net/rpc with its gob codec over the unix socket DIR/host.sock
// (mode 0600 in a 0700 directory; a peer of another uid is refused). The
// first byte of a connection says what it is: 'C', the agent calls the
// host (service "Host", one method per runtime method, plus Hello, Wait —
// a long poll — and Shutdown); 'M', the host answers 'A' and the roles reverse: it calls
// the agent's module store (service "Modules"), for kyb:// modules, which
// only the agent's NATS identity may fetch; 'X', one exec command
// (Client.Exec, runtimes.StreamExecer) in frames, see execwire.go: the host
// answers 'A' and runs the command until it exits or the connection
// closes. Every reply carries its error
// as a WireError, so that errors.Is (ErrNotFound, ErrUnavailable,
// deadlines, fs.ErrNotExist) and errors.As (*runtimes.ReasonError) find on
// the agent what the host's runtime returned. Hello reports the protocol
// range; Hello and Shutdown keep their shape in every version.
//
// Versions: a host of another build or configuration is kept while it
// holds pods (they keep running; new pods run there too) and replaced when
// the agent starts and it holds none. A host whose protocol the agent
// cannot speak is shut down and replaced at once: its pods restart.
// When the host dies, the next call starts a new one, which loads the
// state files and reports every container that was running as exited
// with reason AgentRestarted ("the wasm host process ended ..."), so the
// agent restarts them (restart count +1).
package wasmhost
