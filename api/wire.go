package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// API subjects. The apiserver is the nats.go/micro service "kyb"; each verb
// is the endpoint kyb.api.v1.<verb>.
const (
	ServiceName   = "kyb"
	SubjectPrefix = "kyb.api.v1"
	SubjectApply  = SubjectPrefix + ".apply"
	SubjectGet    = SubjectPrefix + ".get"
	SubjectList   = SubjectPrefix + ".list"
	SubjectDelete = SubjectPrefix + ".delete"
	NodeSubjects  = "kyb.node"  // kyb.node.<node>.<verb>: agent -> control plane
	AgentSubjects = "kyb.agent" // kyb.agent.<node>.<verb>: control plane -> agent
	LogsPrefix    = "kyb.logs"  // kyb.logs.<node>.<namespace>.<pod>.<container>
)

// MaxRequestBytes is the largest body of a kyb.api.v1 request (a manifest
// of any number of documents, or a request object): 1 MiB, as etcd's and so
// Kubernetes' request limit. The apiserver answers a larger one with 413
// before decoding it. The NATS max payload is larger (8 MiB by default), so
// that replies such as a node's pod sync and list pages may be bigger.
const MaxRequestBytes = 1 << 20

// MaxReplySubjectLen bounds the reply subject (inbox) of a request the
// apiserver answers; a request with a longer one is dropped unanswered, as
// publishing on it could exceed NATS' 4 KB control line and cost the
// server its connection.
const MaxReplySubjectLen = 1024

// Apply actions, as kubectl prints them.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
	ActionDeleted    = "deleted"
)

// ApplyResult is the outcome for one applied document.
type ApplyResult struct {
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace,omitempty"`
	Name      string          `json:"name"`
	Action    string          `json:"action"`
	Warnings  []string        `json:"warnings,omitempty"`
	Object    json.RawMessage `json:"object"`
}

// ApplyReply answers kyb.api.v1.apply: one result per document, in order.
// The request body is the manifest itself (YAML or JSON, multi-document).
type ApplyReply struct {
	Results []ApplyResult `json:"results"`
}

// GetRequest asks for one object. Kind accepts any of a kind's names.
type GetRequest struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// ResourceVersion picks the read's consistency, as in Kubernetes: ""
	// (the default) reads the latest state, every write acknowledged
	// before the request included, on whichever server answers; "0" reads
	// the answering server's cache as it is (cheapest, possibly stale); a
	// revision N reads a state not older than N. See ResourceVersionAny.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ResourceVersionAny is the resourceVersion of a get or list that accepts
// any cached state, however old: the read is served at once from the
// answering server's cache, without learning the store's last revision.
const ResourceVersionAny = "0"

// ListRequest asks for the objects of one kind. An empty Namespace with
// AllNamespaces false means "default" for namespaced kinds.
type ListRequest struct {
	Kind          string `json:"kind"`
	Namespace     string `json:"namespace,omitempty"`
	AllNamespaces bool   `json:"allNamespaces,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
	// FieldSelector supports spec.nodeName, metadata.name, metadata.namespace
	// and status.phase with = / == / !=; for kind Event, Kubernetes' event
	// fields instead (involvedObject.kind, involvedObject.name, reason,
	// type, ...: control/events.SelectableFields).
	FieldSelector string `json:"fieldSelector,omitempty"`
	// Limit caps the items of one reply; 0 lets the server fill one reply up
	// to the connection's max payload. A reply that stops early sets Continue.
	Limit int `json:"limit,omitempty"`
	// Continue resumes a list after the last item of the previous page
	// (ListReply.Continue). Pages are read at the time each is asked for.
	Continue string `json:"continue,omitempty"`
	// ResourceVersion picks the read's consistency, as GetRequest's does:
	// "" the latest state, "0" any cached state, N a state not older than N.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ListReply answers kyb.api.v1.list. ResourceVersion is the store revision
// the list was read at; a watch from it misses nothing.
type ListReply struct {
	Kind            string            `json:"kind"`
	ResourceVersion string            `json:"resourceVersion"`
	Items           []json.RawMessage `json:"items"`
	// Continue is set when more items remain: send it back in
	// ListRequest.Continue for the next page.
	Continue string `json:"continue,omitempty"`
}

// DeleteRequest deletes one object. GracePeriodSeconds overrides a pod's
// terminationGracePeriodSeconds. Preconditions, when set, must hold for the
// object as stored, else the delete is a 409 Conflict and changes nothing.
type DeleteRequest struct {
	Kind               string         `json:"kind"`
	Namespace          string         `json:"namespace,omitempty"`
	Name               string         `json:"name"`
	GracePeriodSeconds *int64         `json:"gracePeriodSeconds,omitempty"`
	Preconditions      *Preconditions `json:"preconditions,omitempty"`
	// PropagationPolicy says what happens to the object's dependents (the
	// objects whose ownerReferences name it): Background (the default:
	// the object goes at once, the garbage collector deletes the
	// dependents after), Foreground (the object stays, marked with
	// deletionTimestamp and the foregroundDeletion finalizer, until the
	// collector has deleted its dependents) or Orphan (the collector
	// removes the dependents' references to it, then deletes it). Pods and
	// namespaces take only Background.
	PropagationPolicy string `json:"propagationPolicy,omitempty"`
}

// Preconditions must be fulfilled before a delete is carried out, as
// Kubernetes' metav1.Preconditions: the stored object's uid and
// resourceVersion must equal the ones given (a nil field is not checked).
type Preconditions struct {
	UID             *string `json:"uid,omitempty"`
	ResourceVersion *string `json:"resourceVersion,omitempty"`
}

// Watch event types (kyb.api.v1.watch).
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
	// EventSynced (object null) follows the initial list of a node's
	// services watch (NodeVerbServiceWatch): what came before it is the whole
	// state, so the agent may drop what it held from an earlier watch.
	EventSynced = "SYNCED"
)

// WatchEvent is one committed change. Kind is the lower-case kind in the
// subject; Object is the object after the change (before it, for DELETED).
type WatchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// --- node agent protocol -------------------------------------------------
//
// An agent speaks only on kyb.node.<its name>.<verb> and listens only on
// kyb.agent.<its name>.<verb>.

// Node verbs (agent -> control plane, request/reply).
const (
	// NodeVerbRegister: body Node (labels, taints, status); reply the stored Node.
	NodeVerbRegister = "register"
	// NodeVerbHeartbeat: body Heartbeat; reply Ack. Refreshes the TTL key.
	NodeVerbHeartbeat = "heartbeat"
	// NodeVerbStatus: body NodeStatus; reply Ack. Replaces the node status.
	NodeVerbStatus = "status"
	// NodeVerbPodStatus: body PodStatusBatch; reply Ack.
	NodeVerbPodStatus = "podstatus"
	// NodeVerbSync: empty body; reply PodSync with every pod bound to the node.
	NodeVerbSync = "sync"
	// NodeVerbServiceWatch: body ServicesWatchRequest; reply a stream of
	// WatchEvent of every Service and EndpointSlice (all namespaces, as a
	// Kubernetes node may read them), the current ones first then SYNCED
	// when ResourceVersion is empty, then every change. The agent's proxy
	// and DNS are built from it.
	NodeVerbServiceWatch = "servicewatch"
	// NodeVerbCluster: empty body; reply NodeClusterConfig, what a node
	// takes from the cluster rather than from its own flags (k3s agents
	// fetch the same from their server at start).
	NodeVerbCluster = "cluster"
)

// NodeClusterConfig is the cluster's configuration that every node must
// share with its servers.
type NodeClusterConfig struct {
	// ServiceCIDR is the servers' --service-cidr: the range Service
	// cluster IPs come from.
	ServiceCIDR string `json:"serviceCIDR"`
	// ClusterDNS is the cluster DNS Service's IP, ClusterDNSIP of
	// ServiceCIDR: the nameserver of pods with dnsPolicy ClusterFirst.
	ClusterDNS string `json:"clusterDNS"`
}

// Agent verbs (control plane -> agent).
const (
	// AgentVerbPods: published Assignment whenever a pod bound to the node changes.
	AgentVerbPods = "pods"
)

// NodeSubject returns kyb.node.<node>.<verb>.
func NodeSubject(node, verb string) string { return NodeSubjects + "." + node + "." + verb }

// AgentSubject returns kyb.agent.<node>.<verb>.
func AgentSubject(node, verb string) string { return AgentSubjects + "." + node + "." + verb }

// ServicesWatchRequest asks for the Services and EndpointSlices changed
// after ResourceVersion ("" for the current ones first).
type ServicesWatchRequest struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Heartbeat is an agent's liveness beat.
type Heartbeat struct {
	Time time.Time `json:"time"`
}

// Ack is the reply to a node verb that returns nothing else.
type Ack struct {
	OK bool `json:"ok"`
}

// PodStatusUpdate reports one pod's status. UID guards against reporting
// on a pod that was deleted and re-created under the same name. Finalized
// says every container of a pod marked for deletion has stopped and the
// runtime holds nothing more of it, so the object may be removed.
type PodStatusUpdate struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       string    `json:"uid"`
	Status    PodStatus `json:"status"`
	Finalized bool      `json:"finalized,omitempty"`
}

// PodStatusBatch carries status updates for many pods of one node.
type PodStatusBatch struct {
	Items []PodStatusUpdate `json:"items"`
}

// PodSync is the full list of pods bound to a node, at a store revision.
type PodSync struct {
	Revision uint64 `json:"revision"`
	Pods     []Pod  `json:"pods"`
}

// Assignment is one change to the pods bound to a node. For EventDeleted the
// pod is gone from the store; the agent stops and removes it.
type Assignment struct {
	Type string `json:"type"`
	Pod  Pod    `json:"pod"`
}

// JetStream names shared by the control plane, agents and clients.
const (
	// LogsStream captures kyb.logs.> (container and module output).
	LogsStream = "KYB_LOGS"
	// ModulesBucket is the object store of wasm modules (`kyb module push`).
	ModulesBucket = "kyb-modules"
)

// LogSubject returns kyb.logs.<node>.<namespace>.<pod>.<container>. The
// node comes first because a node may publish only beneath its own name;
// readers take a pod's output only from the node it is bound to, so no node
// can pose as another's pods.
func LogSubject(node, namespace, pod, container string) string {
	return LogsPrefix + "." + node + "." + namespace + "." + pod + "." + container
}

// Events (event.go) live in the stream EventsStream, one subject per event,
// kyb.eventlog.<namespace>.<object key>.<event key> (EventLogSubject), where
// only the control plane publishes: nodes record their pods' events through
// the node verb NodeVerbEvents, which the apiserver checks, and users read
// them with kyb.api.v1.list and kyb.api.v1.watch of kind Event.
const (
	EventsStream     = "KYB_EVENTS"
	EventLogPrefix   = "kyb.eventlog"
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// NodeVerbEvents: body Event about a pod bound to the node (its agent is
// the source); reply the Event as stored (folded with its repeats). 403 for
// a pod not bound to the node, 422 for an invalid event.
const NodeVerbEvents = "events"

// --- streamed replies ------------------------------------------------------
//
// A streaming verb (watch, logs, a node's module) answers one request with
// several messages on its reply subject. Every message carries the
// StreamHeader: StreamData (one item), StreamHeartbeat (the server is alive;
// a non-empty body so `nats req --wait-for-empty` keeps reading) or
// StreamEnd (the last message; an empty body unless it is an error). An end
// with a StreamResumeHeader means "the server ended this stream on its own
// (time or size bound): send the request again from this resume point"; an
// end without one means the stream is complete. An error reply (micro error
// headers, Status body) also ends a stream.

// Streaming subjects.
const (
	SubjectWatch = SubjectPrefix + ".watch"
	SubjectLogs  = SubjectPrefix + ".logs"
)

// Stream headers and their values.
const (
	StreamHeader       = "Kyb-Reply"
	StreamResumeHeader = "Kyb-Resume"
	// StreamSeqHeader is the stream sequence of a log line (logs) or the
	// byte offset of a chunk (module).
	StreamSeqHeader = "Kyb-Seq"
	StreamData      = "data"
	StreamHeartbeat = "heartbeat"
	StreamEnd       = "end"
)

// HeartbeatBody is the body of a heartbeat message.
const HeartbeatBody = `{"type":"HEARTBEAT"}`

// WatchRequest asks for the committed changes to objects of one kind, as
// WatchEvents, filtered on the server. An empty Namespace with
// AllNamespaces false means "default" for namespaced kinds.
type WatchRequest struct {
	Kind          string `json:"kind"`
	Namespace     string `json:"namespace,omitempty"`
	AllNamespaces bool   `json:"allNamespaces,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
	// FieldSelector supports the fields ListRequest does.
	FieldSelector string `json:"fieldSelector,omitempty"`
	// ResourceVersion starts the watch after this revision (every later
	// change, none missed, as from ListReply.ResourceVersion). Empty sends
	// the current objects as ADDED first, then every later change; "0"
	// (Kubernetes' "any") does the same unless the server holds every
	// change since the beginning. A
	// revision older than the server's event history is 410 Gone: list
	// again.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// DryRunHeader on an apply request asks the server to check, admit,
// default and decide it as usual but store nothing (kubectl's
// --dry-run=server); its only value is DryRunAll. The reply is the one a real
// apply would give, with the objects as they would be stored (without uid
// and resourceVersion for a create).
const (
	DryRunHeader = "Kyb-Dry-Run"
	DryRunAll    = "All"
)

// LogAttemptHeader is the header of a log line naming the container
// attempt (its restart count when it started) that wrote it.
const LogAttemptHeader = "Kyb-Attempt"

// LogsRequest asks for a container's output from the logs stream. Each
// line is one data message (the line as the container wrote it, with its
// stream sequence in StreamSeqHeader).
type LogsRequest struct {
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod"`
	// Container may be empty when the pod has one container.
	Container string `json:"container,omitempty"`
	// Tail sends only the last Tail lines there are now; negative (or
	// absent with SinceSeq 0) sends all.
	Tail *int `json:"tail,omitempty"`
	// Follow keeps sending lines as they are written.
	Follow bool `json:"follow,omitempty"`
	// SinceSeq starts at this stream sequence (a resume point); Tail is
	// ignored when it is set.
	SinceSeq uint64 `json:"sinceSeq,omitempty"`
	// SinceTime sends only lines written at or after it (kubectl's
	// --since and --since-time); ignored when SinceSeq is set.
	SinceTime *time.Time `json:"sinceTime,omitempty"`
	// Previous sends the output of the container's previous attempt (the
	// one before its last restart) instead of every attempt's; a container
	// that never restarted has none (400). It cannot be followed.
	Previous bool `json:"previous,omitempty"`
}

// Module subjects: push opens an upload, whose chunks go to the returned
// kyb.api.v1.modules.upload.<id> subject.
const (
	SubjectModulesPush   = SubjectPrefix + ".modules.push"
	SubjectModulesUpload = SubjectPrefix + ".modules.upload" // .<id>
	SubjectModulesList   = SubjectPrefix + ".modules.list"
	SubjectModulesGet    = SubjectPrefix + ".modules.get"
)

// ModuleInfo describes a stored wasm module. Digest is "sha256:<hex>", the
// form kyb://NAME@sha256:<hex> pins.
type ModuleInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// ModuleList answers kyb.api.v1.modules.list, sorted by name.
type ModuleList struct {
	Items []ModuleInfo `json:"items"`
}

// ModuleRequest names one module (modules.get, and a node's module verbs).
// Offset and Digest resume a node's streamed download: from this byte, and
// only if the module still has this digest (409 otherwise).
type ModuleRequest struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// ModulePushRequest opens an upload of Size bytes whose SHA-256 is Digest
// ("sha256:<hex>").
type ModulePushRequest struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// ModuleUpload answers kyb.api.v1.modules.push: send the module's bytes in
// order as requests to Subject, each at most ChunkSize bytes with its byte
// offset in the StreamSeqHeader header. Each chunk is answered with a
// ModuleUploadAck; the last with the stored ModuleInfo. An upload idle for
// IdleTimeout is dropped and leaves nothing.
type ModuleUpload struct {
	Subject     string `json:"subject"`
	ChunkSize   int    `json:"chunkSize"`
	IdleTimeout string `json:"idleTimeout"`
}

// ModuleUploadAck acknowledges a chunk: Received bytes are stored so far.
type ModuleUploadAck struct {
	Received int64 `json:"received"`
}

// Node module verbs: a node fetches the kyb:// modules of its pods.
const (
	// NodeVerbModule: body ModuleRequest; a streamed reply of the module's
	// bytes, each chunk with its offset in StreamSeqHeader and the module's
	// digest and size in ModuleDigestHeader and ModuleSizeHeader. 403 unless
	// a pod bound to the node references kyb://<name>.
	NodeVerbModule = "module"
	// NodeVerbModuleInfo: body ModuleRequest; reply ModuleInfo. Same rule.
	NodeVerbModuleInfo = "moduleinfo"
	ModuleDigestHeader = "Kyb-Module-Digest"
	ModuleSizeHeader   = "Kyb-Module-Size"
)

// ReasonExpired is the reason of a 410: a watch's resourceVersion is older
// than the server's event history (Kubernetes' "too old resource version").
const ReasonExpired = "Expired"

// NewExpired says a watch cannot resume from rv without a gap: list again.
func NewExpired(rv, oldest uint64) *Status {
	return &Status{Code: 410, Reason: ReasonExpired,
		Message: fmt.Sprintf("too old resource version: %d (oldest kept: %d); list again", rv, oldest)}
}

// IsExpired reports whether err is an Expired (410) Status.
func IsExpired(err error) bool { return ReasonOf(err) == ReasonExpired }

// SubjectBackup streams a backup of the whole store (kyb backup): the bytes
// of a backup file in order, each data message's StreamSeqHeader its byte
// offset. Allowed to whoever may "get" the cluster-scoped resource
// ResourceBackups (cluster-admin by default: a backup holds every secret).
const SubjectBackup = SubjectPrefix + ".backup"

// ResourceBackups is the RBAC resource of SubjectBackup.
const ResourceBackups = "backups"

// BackupRequest asks for a backup (empty) or for the rest of one from the
// resume point its last window ended with.
type BackupRequest struct {
	Resume string `json:"resume,omitempty"`
}
