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
func (a *Agent) ServiceEnv(ctx context.Context, pod *api.Pod) ([]api.EnvVar, error) {
	var l api.ServiceList
	if err := a.request(ctx, api.NodeVerbServices, api.ServicesRequest{Namespace: pod.Namespace}, &l); err != nil {
		return nil, err
	}
	return api.PodServiceEnv(pod, l.Items), nil
}
