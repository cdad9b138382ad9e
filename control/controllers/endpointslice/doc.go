// Package endpointslice is the EndpointSlice controller, as Kubernetes'
// (discovery.k8s.io/v1), on the controller framework: for every Service
// with a selector it keeps EndpointSlices labelled
// kubernetes.io/service-name, owned by the Service (so the garbage
// collector removes them with it), of at most 100 endpoints each, that
// list the selected pods of both runtimes:
//
//   - a container pod by its pod IP (Runtime "containerd");
//   - a wasm pod (runtimeClassName wasm) by the InternalIP of the node
//     that runs it (Runtime "wasm", NodeName set): that node's proxy hands
//     the connection to the pod's WAGI handler.
//
// Ready pods are listed with ready=true; pods not ready with ready=false;
// terminating pods with terminating=true (ready=false); a Service with
// publishNotReadyAddresses lists every pod as ready. Each Service port's
// targetPort is resolved per pod (a name is looked up in the pod's
// container ports; a pod that has none of the Service's ports is left
// out), and pods are grouped into slices by their resolved ports. A pod's
// hostname is set when its spec.subdomain names the Service.
//
// The controller also writes a LoadBalancer Service's
// status.loadBalancer.ingress: the addresses of the ready nodes (k3s'
// ServiceLB way: every node serves the Service's port), updated as nodes
// come, go and change readiness.
//
// Everything is fed by the shared informers: a pod's readiness change
// reaches the slices with one reconcile, never a poll.
package endpointslice
