package api

import "time"

// Node is a machine that runs pods through its agent.
type Node struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NodeSpec   `json:"spec,omitzero"`
	Status     NodeStatus `json:"status,omitzero"`
}

// NodeSpec is the desired state of a node.
type NodeSpec struct {
	PodCIDR       string   `json:"podCIDR,omitempty"`
	PodCIDRs      []string `json:"podCIDRs,omitempty"`
	Taints        []Taint  `json:"taints,omitempty"`
	Unschedulable bool     `json:"unschedulable,omitempty"`
}

// Node condition types.
const (
	NodeReady              = "Ready"
	NodeMemoryPressure     = "MemoryPressure"
	NodeDiskPressure       = "DiskPressure"
	NodePIDPressure        = "PIDPressure"
	NodeNetworkUnavailable = "NetworkUnavailable"
)

// NodeCondition is one condition of a node.
type NodeCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastHeartbeatTime  time.Time       `json:"lastHeartbeatTime,omitzero"`
	LastTransitionTime time.Time       `json:"lastTransitionTime,omitzero"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// Node address types.
const (
	NodeHostName   = "Hostname"
	NodeInternalIP = "InternalIP"
	NodeExternalIP = "ExternalIP"
)

// NodeAddress is one address of a node.
type NodeAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// NodeRuntime is one runtime a node offers, as it advertises it.
type NodeRuntime struct {
	// Name is the runtime class it serves: "containerd" or "wasm".
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// NodeSystemInfo describes a node's machine and software.
type NodeSystemInfo struct {
	MachineID       string        `json:"machineID,omitempty"`
	KernelVersion   string        `json:"kernelVersion,omitempty"`
	OSImage         string        `json:"osImage,omitempty"`
	OperatingSystem string        `json:"operatingSystem,omitempty"`
	Architecture    string        `json:"architecture,omitempty"`
	AgentVersion    string        `json:"kubeletVersion,omitempty"`
	Runtimes        []NodeRuntime `json:"runtimes,omitempty"`
}

// HasRuntime reports whether the node offers the named runtime.
func (i *NodeSystemInfo) HasRuntime(name string) bool {
	for _, r := range i.Runtimes {
		if r.Name == name {
			return true
		}
	}
	return false
}

// NodeStatus is the observed state of a node, reported by its agent.
type NodeStatus struct {
	Capacity    ResourceList    `json:"capacity,omitempty"`
	Allocatable ResourceList    `json:"allocatable,omitempty"`
	Conditions  []NodeCondition `json:"conditions,omitempty"`
	Addresses   []NodeAddress   `json:"addresses,omitempty"`
	NodeInfo    NodeSystemInfo  `json:"nodeInfo,omitzero"`
}

// Condition returns the node condition of the given type, or nil.
func (s *NodeStatus) Condition(typ string) *NodeCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition sets or replaces a condition, keeping LastTransitionTime
// when the status did not change.
func (s *NodeStatus) SetCondition(c NodeCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status && c.LastTransitionTime.IsZero() {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			}
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

// IsReady reports whether the node's Ready condition is True.
func (n *Node) IsReady() bool {
	c := n.Status.Condition(NodeReady)
	return c != nil && c.Status == ConditionTrue
}

// Namespace groups namespaced objects.
type Namespace struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NamespaceSpec   `json:"spec,omitzero"`
	Status     NamespaceStatus `json:"status,omitzero"`
}

// NamespaceSpec is the desired state of a namespace.
type NamespaceSpec struct {
	Finalizers []string `json:"finalizers,omitempty"`
}

// NamespaceStatus is the observed state of a namespace: Active or Terminating.
type NamespaceStatus struct {
	Phase string `json:"phase,omitempty"`
}
