package api

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// KubernetesServiceName is the Service of the API in the default
// namespace, whose variables every pod gets (as the kubelet's master
// services), enableServiceLinks or not.
const KubernetesServiceName = "kubernetes"

// ServiceEnv returns the Docker-links style environment variables of
// services exactly as the kubelet's envvars.FromServices writes them, in
// the order given: for a Service "redis-primary" with clusterIP 10.43.0.11
// and a port 6379/TCP named "tcp":
//
//	REDIS_PRIMARY_SERVICE_HOST=10.43.0.11
//	REDIS_PRIMARY_SERVICE_PORT=6379
//	REDIS_PRIMARY_SERVICE_PORT_TCP=6379
//	REDIS_PRIMARY_PORT=tcp://10.43.0.11:6379
//	REDIS_PRIMARY_PORT_6379_TCP=tcp://10.43.0.11:6379
//	REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp
//	REDIS_PRIMARY_PORT_6379_TCP_PORT=6379
//	REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.43.0.11
//
// SERVICE_PORT is the first port's; each named port gets its own
// SERVICE_PORT_<NAME>. Services without a cluster IP (headless,
// ExternalName, not allocated yet) and without ports are left out.
func ServiceEnv(services []*Service) []EnvVar {
	var out []EnvVar
	for _, svc := range services {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == ClusterIPNone || svc.Spec.Type == ServiceTypeExternalName || len(svc.Spec.Ports) == 0 {
			continue
		}
		prefix := envName(svc.Name)
		out = append(out, EnvVar{Name: prefix + "_SERVICE_HOST", Value: ip})
		portVar := prefix + "_SERVICE_PORT"
		out = append(out, EnvVar{Name: portVar, Value: strconv.Itoa(int(svc.Spec.Ports[0].Port))})
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				out = append(out, EnvVar{Name: portVar + "_" + envName(p.Name), Value: strconv.Itoa(int(p.Port))})
			}
		}
		for i, p := range svc.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = string(ProtocolTCP)
			}
			lower := strings.ToLower(proto)
			url := fmt.Sprintf("%s://%s", lower, net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))
			if i == 0 {
				out = append(out, EnvVar{Name: prefix + "_PORT", Value: url})
			}
			pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
			out = append(out,
				EnvVar{Name: pp, Value: url},
				EnvVar{Name: pp + "_PROTO", Value: lower},
				EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
				EnvVar{Name: pp + "_ADDR", Value: ip},
			)
		}
	}
	return out
}

// envName is the kubelet's makeEnvVariableName: upper case, '-' as '_'.
func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// PodServiceEnv returns the service variables a pod's containers get, as
// the kubelet chooses them: the Services of the pod's namespace when
// spec.enableServiceLinks is unset or true, and always the `kubernetes`
// Service of the default namespace (a Service of the pod's namespace of
// the same name wins); sorted by Service name, so the result is stable.
// Variables the pod sets itself win over these: the caller puts these
// first. services may hold any namespaces; others are ignored.
func PodServiceEnv(pod *Pod, services []*Service) []EnvVar {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	chosen := map[string]*Service{}
	for _, s := range services {
		switch {
		case s.Namespace == pod.Namespace && links:
			chosen[s.Name] = s
		case s.Namespace == DefaultNamespace && s.Name == KubernetesServiceName:
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	slices.Sort(names)
	list := make([]*Service, len(names))
	for i, n := range names {
		list[i] = chosen[n]
	}
	return ServiceEnv(list)
}
