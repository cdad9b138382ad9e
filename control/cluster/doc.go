// Package cluster serves the control plane's cluster verbs (micro service
// "kyb-cluster"): kyb.api.v1.cluster.status, which reports the servers
// (registered, answering, current), the leader and followers' lag of every
// stream and bucket, and the lease holders; and kyb.api.v1.cluster.remove,
// which removes a dead server from the JetStream cluster (peer removal) so
// a new one can take its place. Every server serves both (a queue group),
// authorized by the apiserver's RBAC (resource "servers").
package cluster
