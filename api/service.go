package api

import "time"

// DiscoveryVersion is the apiVersion of EndpointSlice, as Kubernetes'
// discovery.k8s.io/v1.
const DiscoveryVersion = "discovery.k8s.io/v1"

// DiscoveryGroup is the API group of EndpointSlice.
const DiscoveryGroup = "discovery.k8s.io"

// The service kinds.
var (
	serviceKind       = &Kind{Name: "Service", Plural: "services", Short: []string{"svc", "service"}, Namespaced: true, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &Service{} }}
	endpointSliceKind = &Kind{Name: "EndpointSlice", Plural: "endpointslices", Short: []string{"endpointslice"}, Namespaced: true, APIVersions: []string{DiscoveryVersion, "kyb/v1"}, New: func() Object { return &EndpointSlice{} }}
)

// Service types, as Kubernetes'.
type ServiceType string

// Service types.
const (
	ServiceTypeClusterIP    ServiceType = "ClusterIP"
	ServiceTypeNodePort     ServiceType = "NodePort"
	ServiceTypeLoadBalancer ServiceType = "LoadBalancer"
)

// ClusterIPNone in spec.clusterIP makes a headless Service: no virtual
// IP; its DNS name answers with the addresses of its ready endpoints.
const ClusterIPNone = "None"

// Session affinities of a Service.
const (
	SessionAffinityNone     = "None"
	SessionAffinityClientIP = "ClientIP"
)

// Service is a stable name and virtual address for a set of pods chosen
// by a label selector, as Kubernetes' v1 Service. Its endpoints may be
// container pods and wasm pods at once.
type Service struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ServiceSpec   `json:"spec"`
	Status     ServiceStatus `json:"status,omitzero"`
}

// ServiceSpec is what a Service serves and how.
type ServiceSpec struct {
	Type ServiceType `json:"type,omitempty"`
	// Selector picks the pods behind the Service; empty means the
	// endpoints are not managed (none are listed).
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// ClusterIP is the virtual IP, allocated from the service CIDR when
	// empty, or "None" for a headless Service.
	ClusterIP  string   `json:"clusterIP,omitempty"`
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// SessionAffinity is None or ClientIP.
	SessionAffinity       string                 `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`
	// ExternalTrafficPolicy, InternalTrafficPolicy: Cluster or Local.
	ExternalTrafficPolicy string `json:"externalTrafficPolicy,omitempty"`
	InternalTrafficPolicy string `json:"internalTrafficPolicy,omitempty"`
	// PublishNotReadyAddresses lists endpoints that are not ready too.
	PublishNotReadyAddresses bool `json:"publishNotReadyAddresses,omitempty"`
	// ExternalIPs are further addresses the nodes accept traffic on.
	ExternalIPs []string `json:"externalIPs,omitempty"`
	// ExternalName makes a Service of type ExternalName (a DNS CNAME).
	ExternalName string `json:"externalName,omitempty"`
	// IPFamilies and IPFamilyPolicy: only IPv4 single-stack is served.
	IPFamilies     []string `json:"ipFamilies,omitempty"`
	IPFamilyPolicy string   `json:"ipFamilyPolicy,omitempty"`
	// LoadBalancerClass, AllocateLoadBalancerNodePorts follow Kubernetes.
	AllocateLoadBalancerNodePorts *bool `json:"allocateLoadBalancerNodePorts,omitempty"`
}

// SessionAffinityConfig configures ClientIP affinity.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

// ClientIPConfig is how long a client sticks to one endpoint.
type ClientIPConfig struct {
	// TimeoutSeconds defaults to 10800 (3 hours), as Kubernetes'.
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
}

// ServicePort is one port a Service serves.
type ServicePort struct {
	// Name is required when there are several ports; it names the SRV
	// record _name._protocol.<svc>.<ns>.svc.cluster.local.
	Name string `json:"name,omitempty"`
	// Protocol is TCP (default) or UDP.
	Protocol string `json:"protocol,omitempty"`
	// AppProtocol is a hint (e.g. "http"), not used by the proxy.
	AppProtocol string `json:"appProtocol,omitempty"`
	Port        int32  `json:"port"`
	// TargetPort is the pods' port, by number or by the name of a
	// container port; it defaults to Port.
	TargetPort IntOrString `json:"targetPort,omitzero"`
	// NodePort is the port every node serves for a NodePort or
	// LoadBalancer Service, allocated from 30000-32767 when zero.
	NodePort int32 `json:"nodePort,omitempty"`
}

// ServiceStatus is what the cluster made of a Service.
type ServiceStatus struct {
	LoadBalancer LoadBalancerStatus `json:"loadBalancer,omitzero"`
	Conditions   []Condition        `json:"conditions,omitempty"`
}

// LoadBalancerStatus lists a LoadBalancer Service's ingress points: the
// nodes' addresses, as k3s' ServiceLB serves them.
type LoadBalancerStatus struct {
	Ingress []LoadBalancerIngress `json:"ingress,omitempty"`
}

// LoadBalancerIngress is one address a LoadBalancer Service answers on.
type LoadBalancerIngress struct {
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// Labels of EndpointSlices, as Kubernetes sets them.
const (
	// LabelServiceName names the Service an EndpointSlice belongs to.
	LabelServiceName = "kubernetes.io/service-name"
	// LabelManagedBy names the controller that manages a slice.
	LabelManagedBy = "endpointslice.kubernetes.io/managed-by"
)

// EndpointSlice lists some of the endpoints of a Service, as Kubernetes'
// discovery.k8s.io/v1 EndpointSlice. Its controller keeps one or more
// slices per Service, labelled kubernetes.io/service-name.
type EndpointSlice struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// AddressType is IPv4 (the only one served) or FQDN.
	AddressType string         `json:"addressType"`
	Endpoints   []Endpoint     `json:"endpoints"`
	Ports       []EndpointPort `json:"ports,omitempty"`
}

// Endpoint is one backend of a Service: a container pod by its pod IP, or
// a wasm pod (Runtime "wasm") by the address of the node that runs it, whose
// proxy hands the connection to the pod's WAGI handler; the slice's ports
// are the pods' container ports in both cases.
type Endpoint struct {
	Addresses  []string           `json:"addresses"`
	Conditions EndpointConditions `json:"conditions,omitzero"`
	// Hostname is the pod's hostname when it has a subdomain (StatefulSet
	// pods), for the DNS name <hostname>.<svc>.<ns>.svc.cluster.local.
	Hostname  string           `json:"hostname,omitempty"`
	NodeName  string           `json:"nodeName,omitempty"`
	Zone      string           `json:"zone,omitempty"`
	TargetRef *ObjectReference `json:"targetRef,omitempty"`
	// Runtime is "containerd" or "wasm" (a kybernetes extension): how the
	// proxy reaches the endpoint.
	Runtime string `json:"runtime,omitempty"`
}

// EndpointConditions are an endpoint's readiness, as Kubernetes'.
type EndpointConditions struct {
	Ready       *bool `json:"ready,omitempty"`
	Serving     *bool `json:"serving,omitempty"`
	Terminating *bool `json:"terminating,omitempty"`
}

// EndpointPort is a port of the endpoints; Name matches the Service port's.
type EndpointPort struct {
	Name        *string `json:"name,omitempty"`
	Protocol    *string `json:"protocol,omitempty"`
	Port        *int32  `json:"port,omitempty"`
	AppProtocol *string `json:"appProtocol,omitempty"`
}

// Condition is a condition of an object, as Kubernetes' metav1.Condition.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	ObservedGeneration int64     `json:"observedGeneration,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime,omitzero"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
}
