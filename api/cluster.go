package api

import "time"

// Subjects of the control plane's cluster service (micro service "kyb-cluster").
const (
	// SubjectClusterStatus reports the servers, the leaders and lag of every
	// stream and bucket, and the lease holders: ClusterStatusRequest -> ClusterStatus.
	SubjectClusterStatus = SubjectPrefix + ".cluster.status"
	// SubjectClusterRemove removes a (dead) server from the JetStream
	// cluster, so a new one can take its place: ServerRemoveRequest -> ServerRemoveReply.
	SubjectClusterRemove = SubjectPrefix + ".cluster.remove"
)

// ServerTokenID is the ID of the cluster's server join token
// (KYB1<CA hash>::server.<secret>): it lets a new control plane server
// join and receive the cluster's keys; node join tokens never carry it.
const ServerTokenID = "server"

// ServerJoinInbox is the inbox prefix of a joining server: the reply holds
// the cluster's keys, so it never goes to the _INBOX.> that node-token
// holders may read.
const ServerJoinInbox = "_INBOX_kyb_server_join"

// ClusterStatusRequest asks for the cluster's status; it has no fields yet.
type ClusterStatusRequest struct{}

// ClusterStatus is what `kyb cluster status` (`kyb get servers`) shows.
type ClusterStatus struct {
	// Servers are the control plane servers: those registered (alive or
	// not) and the JetStream cluster's peers.
	Servers []ServerStatus `json:"servers"`
	// MetaLeader is the server leading the JetStream meta group ("" when
	// standalone or leaderless).
	MetaLeader string `json:"metaLeader,omitempty"`
	// Streams are the streams and buckets with their leader and replicas.
	Streams []StreamStatus `json:"streams"`
	// Leases are the control plane's leases and their holders.
	Leases []LeaseStatus `json:"leases"`
}

// ServerStatus is one control plane server.
type ServerStatus struct {
	Name       string `json:"name"`
	ClientURL  string `json:"clientURL,omitempty"`
	ClusterURL string `json:"clusterURL,omitempty"`
	Version    string `json:"version,omitempty"`
	// Up is true while the server's registration is alive and the
	// JetStream cluster sees it.
	Up bool `json:"up"`
	// Current is false when the JetStream cluster sees it but it lags the meta leader.
	Current bool      `json:"current"`
	Started time.Time `json:"started,omitempty"`
}

// StreamStatus is one stream (a KV bucket is the stream KV_<bucket>, an
// object store OBJ_<store>).
type StreamStatus struct {
	Name     string          `json:"name"`
	Replicas int             `json:"replicas"`
	Leader   string          `json:"leader,omitempty"`
	Messages uint64          `json:"messages"`
	Peers    []StreamReplica `json:"peers,omitempty"`
}

// StreamReplica is a follower of a stream.
type StreamReplica struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Offline bool   `json:"offline,omitempty"`
	// Lag is how many operations the follower is behind the leader.
	Lag uint64 `json:"lag"`
	// Active is how long ago the leader last heard from it.
	Active time.Duration `json:"active"`
}

// LeaseStatus is one lease: its holder ("" when free).
type LeaseStatus struct {
	Name   string `json:"name"`
	Holder string `json:"holder,omitempty"`
}

// ServerRemoveRequest names the server to remove from the cluster.
type ServerRemoveRequest struct {
	Name string `json:"name"`
}

// ServerRemoveReply confirms a removal.
type ServerRemoveReply struct {
	Name string `json:"name"`
}

// ServerJoinRequest is a control plane server's join (kyb.join with the
// server token): its name, and where it listens for clients and routes.
type ServerJoinRequest struct {
	Server     bool   `json:"server"`
	Name       string `json:"name"`
	ClusterURL string `json:"clusterURL,omitempty"`
}

// ServerJoinReply gives a joining server the cluster's keys (every file of
// the cluster's PKI directory but the answering server's own certificate),
// and the servers' client and route URLs.
type ServerJoinReply struct {
	PKI        map[string][]byte `json:"pki"`
	ClientURLs []string          `json:"clientURLs,omitempty"`
	Routes     []string          `json:"routes,omitempty"`
}
