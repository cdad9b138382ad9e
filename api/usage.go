package api

import "time"

// Resource usage: agents sample what their pods use and report it through
// the node verb kyb.node.<node>.usage (NodeUsageReport); the control plane
// keeps the last hour and answers kyb.api.v1.top (TopRequest -> TopReply),
// which `kyb top` and the dashboard's plots call. RBAC is Kubernetes'
// metrics.k8s.io: verb get (one object) or list on resource pods or nodes
// of group MetricsGroup.

// SubjectTop answers TopRequest with TopReply.
const SubjectTop = SubjectPrefix + ".top"

// NodeVerbUsage is the node verb carrying a NodeUsageReport.
const NodeVerbUsage = "usage"

// MetricsGroup is the API group RBAC rules name to grant usage reads
// (resources pods and nodes), as Kubernetes' metrics-server.
const MetricsGroup = "metrics.k8s.io"

// MaxUsagePods bounds the pods of one usage report (the agent sends its
// pods in several reports beyond it).
const MaxUsagePods = 2000

// ContainerUsage is one container's usage at a sample.
type ContainerUsage struct {
	Name string `json:"name"`
	// CPUNanoCores is the CPU used over the last sampling window, in
	// billionths of a core (Kubernetes' usageNanoCores).
	CPUNanoCores uint64 `json:"cpuNanoCores"`
	// CPUUsageNanos is the CPU time used since the container started.
	CPUUsageNanos uint64 `json:"cpuUsageNanos"`
	// MemoryBytes is the working set (containers) or the linear memory of
	// the running instances (wasm).
	MemoryBytes uint64 `json:"memoryBytes"`
	// Instances is how many module instances run now (wasm only).
	Instances int64 `json:"instances,omitempty"`
}

// PodUsage is one pod's usage at a sample.
type PodUsage struct {
	Namespace  string           `json:"namespace"`
	Name       string           `json:"name"`
	UID        string           `json:"uid,omitempty"`
	Runtime    string           `json:"runtime,omitempty"`
	Containers []ContainerUsage `json:"containers"`
}

// NodeUsageReport is one sample of a node: its own usage and its pods'.
type NodeUsageReport struct {
	// Time is when the agent sampled (the server keeps its own receipt
	// time, so that clock skew cannot reorder a series).
	Time time.Time `json:"time"`
	// Window is the span CPU rates are averaged over.
	Window       Duration   `json:"window"`
	CPUNanoCores uint64     `json:"cpuNanoCores"`
	MemoryBytes  uint64     `json:"memoryBytes"`
	Pods         []PodUsage `json:"pods,omitempty"`
}

// Duration is a time.Duration as a Go duration string in JSON ("10s").
type Duration struct{ time.Duration }

// MarshalJSON writes d as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return &Status{Code: 400, Reason: ReasonBadRequest, Message: "duration: want a string such as \"10s\""}
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return &Status{Code: 400, Reason: ReasonBadRequest, Message: "duration: " + err.Error()}
	}
	d.Duration = v
	return nil
}

// TopRequest asks for the usage of nodes (Kind "nodes") or pods (Kind
// "pods"). For pods, an empty Namespace with AllNamespaces false means
// "default". Name picks one object; LabelSelector filters by the object's
// labels. Series asks for the last hour of samples of each object too
// (meant with Name, for plots).
type TopRequest struct {
	Kind          string `json:"kind"`
	Namespace     string `json:"namespace,omitempty"`
	AllNamespaces bool   `json:"allNamespaces,omitempty"`
	Name          string `json:"name,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
	Series        bool   `json:"series,omitempty"`
}

// UsagePoint is one sample of a series.
type UsagePoint struct {
	Time         time.Time `json:"time"`
	CPUNanoCores uint64    `json:"cpuNanoCores"`
	MemoryBytes  uint64    `json:"memoryBytes"`
}

// NodeMetrics is a node's last sample, with what it can hold for the
// percentages `kyb top nodes` prints.
type NodeMetrics struct {
	Name      string     `json:"name"`
	Timestamp time.Time  `json:"timestamp"`
	Window    Duration   `json:"window"`
	Usage     UsagePoint `json:"usage"`
	// AllocatableCPUMilli and AllocatableMemoryBytes are the node's
	// allocatable, 0 when unknown.
	AllocatableCPUMilli    int64        `json:"allocatableCPUMilli"`
	AllocatableMemoryBytes int64        `json:"allocatableMemoryBytes"`
	Series                 []UsagePoint `json:"series,omitempty"`
}

// PodMetrics is a pod's last sample: the sum over its containers in Usage,
// each container in Containers.
type PodMetrics struct {
	Namespace  string           `json:"namespace"`
	Name       string           `json:"name"`
	Node       string           `json:"node,omitempty"`
	Runtime    string           `json:"runtime,omitempty"`
	Timestamp  time.Time        `json:"timestamp"`
	Window     Duration         `json:"window"`
	Usage      UsagePoint       `json:"usage"`
	Containers []ContainerUsage `json:"containers"`
	Series     []UsagePoint     `json:"series,omitempty"`
}

// TopReply answers TopRequest: Nodes or Pods, sorted by name (pods by
// namespace, then name). Objects with no sample yet are left out.
type TopReply struct {
	Nodes []NodeMetrics `json:"nodes,omitempty"`
	Pods  []PodMetrics  `json:"pods,omitempty"`
}
