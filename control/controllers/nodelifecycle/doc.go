// Package nodelifecycle owns the node lifecycle controller: it watches node
// heartbeats (control/store.Heartbeats, a KV bucket with per-key TTL) and,
// when a node's key expires or a node never beats within a grace period,
// sets the node's conditions to Unknown (Ready=Unknown, reason
// NodeStatusUnknown), as Kubernetes' node lifecycle controller does. It
// never sets a node Ready again: the agent's own status report does that
// once it beats again.
package nodelifecycle
