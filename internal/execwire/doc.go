// Package execwire holds the flow control both ends of an exec or
// port-forward session use (the node agent and the client; see api/exec.go
// for the protocol): a sender's credit Window, and the receiver's bounded
// Inbox that grants credit back as its reader consumes. Framing helpers
// build and read the session's NATS messages.
package execwire
