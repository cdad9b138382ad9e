package node

import (
	"context"

	"github.com/kybernetes/kybernetes/api"
)

// ServiceEnv returns the Kubernetes service environment variables of pod
// (FOO_SERVICE_HOST, FOO_PORT_80_TCP, ... for the Services of its
// namespace, honouring spec.enableServiceLinks, and the default
// namespace's `kubernetes` Service), as the kubelet computes them when a
// container starts: api.PodServiceEnv over the Services the control plane
// hands this node through its services verb. Variables the container sets
// itself win: put these first. The pod must be bound to this node.
//
// When the control plane cannot answer, the namespace's Services last
// fetched are used, so that a container restarting during an outage still
// starts (with the variables as they were); with none fetched yet, the
// error is returned and the container waits.
func (a *Agent) ServiceEnv(ctx context.Context, pod *api.Pod) ([]api.EnvVar, error) {
	var l api.ServiceList
	err := a.request(ctx, api.NodeVerbServices, api.ServicesRequest{Namespace: pod.Namespace}, &l)
	a.svcMu.Lock()
	defer a.svcMu.Unlock()
	if err != nil {
		last, ok := a.svcLast[pod.Namespace]
		if !ok || api.ReasonOf(err) == api.ReasonForbidden {
			return nil, err
		}
		return api.PodServiceEnv(pod, last), nil
	}
	if a.svcLast == nil {
		a.svcLast = map[string][]*api.Service{}
	}
	a.svcLast[pod.Namespace] = l.Items
	return api.PodServiceEnv(pod, l.Items), nil
}
