package node

import (
	"context"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// serviceEnvWait bounds how long a container start waits for the node's
// services cache to list for the first time (an agent just started); past
// it the start fails and is tried again, as any config error.
const serviceEnvWait = 10 * time.Second

// ServiceEnv returns the Kubernetes service environment variables of pod
// (FOO_SERVICE_HOST, FOO_PORT_80_TCP, ... for the Services of its
// namespace, honouring spec.enableServiceLinks, and the default
// namespace's `kubernetes` Service), as the kubelet computes them when a
// container starts: api.PodServiceEnv over the node's services cache, the
// same watch the proxy and the DNS server read (the kubelet too keeps a
// Service informer). Variables the container sets itself win: put these
// first.
//
// Through an outage of the control plane the cache keeps what it last
// held, so a container restarting then still starts, with the variables as
// they were; before the cache's first list (an agent starting without a
// server) the start waits for it, at most serviceEnvWait.
func (a *Agent) ServiceEnv(ctx context.Context, pod *api.Pod) ([]api.EnvVar, error) {
	wctx, cancel := context.WithTimeout(ctx, serviceEnvWait)
	defer cancel()
	if err := a.svc.WaitSynced(wctx); err != nil {
		return nil, api.NewUnavailable("service environment of pod %s/%s: the node has not listed the cluster's Services yet: %v", pod.Namespace, pod.Name, err)
	}
	st := a.svc.State()
	var list []*api.Service
	for _, s := range st.Services {
		if s.Namespace == pod.Namespace || (s.Namespace == api.DefaultNamespace && s.Name == api.KubernetesServiceName) {
			list = append(list, s)
		}
	}
	return api.PodServiceEnv(pod, list), nil
}
