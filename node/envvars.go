package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// ReasonInvalidEnvironmentVariableNames is the event of envFrom keys that
// were skipped because they are not valid variable names, as kubelet's.
const ReasonInvalidEnvironmentVariableNames = "InvalidEnvironmentVariableNames"

// ServiceEnvFunc returns the extra variables of a pod's containers that
// come from the cluster (Kubernetes' service environment variables,
// FOO_SERVICE_HOST, ...). They have the lowest precedence (a container's
// env and envFrom win) and $(VAR) in env values may refer to them, as in
// kubelet.
type ServiceEnvFunc func(ctx context.Context, pod *api.Pod) ([]api.EnvVar, error)

// containerEnv assembles a container's environment the way kubelet's
// makeEnvironmentVariables does:
//
//  1. HOSTNAME is the pod's host name (the node's for a hostNetwork pod);
//  2. envFrom sources, in order (a later one wins), each key prefixed;
//     keys that are not valid names are skipped with an
//     InvalidEnvironmentVariableNames event;
//  3. env, in order, each value with $(VAR) expanded from the variables
//     defined so far and the service variables ($$ escapes; an undefined
//     reference stays as written); valueFrom resolved from a ConfigMap,
//     Secret, the pod's fields or the container's resources;
//  4. the service variables (the one place cluster-provided variables
//     enter: Config.ServiceEnv) that no earlier step defined.
//
// A missing ConfigMap, Secret or key that is not optional is an error
// naming it (the container waits with CreateContainerConfigError).
func (w *podWorker) containerEnv(ctx context.Context, pod *api.Pod, c *api.Container) ([]runtimes.EnvVar, error) {
	var names []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			names = append(names, k)
		}
		vals[k] = v
	}
	set("HOSTNAME", w.podHostname(pod))
	for i, ef := range c.EnvFrom {
		var (
			kind, name string
			optional   bool
		)
		switch {
		case ef.ConfigMapRef != nil:
			kind, name, optional = "ConfigMap", ef.ConfigMapRef.Name, api.IsOptional(ef.ConfigMapRef.Optional)
		case ef.SecretRef != nil:
			kind, name, optional = "Secret", ef.SecretRef.Name, api.IsOptional(ef.SecretRef.Optional)
		default:
			return nil, fmt.Errorf("envFrom[%d]: no source", i)
		}
		data, err := w.configData(ctx, kind, pod.Namespace, name)
		if err != nil {
			if optional && isConfigNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("envFrom[%d]: %w", i, err)
		}
		var invalid []string
		for _, k := range slices.Sorted(maps.Keys(data)) {
			n := ef.Prefix + k
			if len(validation.IsEnvVarName(n)) > 0 {
				invalid = append(invalid, n)
				continue
			}
			set(n, string(data[k]))
		}
		if len(invalid) > 0 {
			w.event(api.EventTypeWarning, ReasonInvalidEnvironmentVariableNames, c.Name,
				"Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
				strings.Join(invalid, ", "), strings.ToLower(kind), pod.Namespace, name)
		}
	}
	service := map[string]string{}
	if f := w.a.cfg.ServiceEnv; f != nil {
		env, err := f(ctx, pod)
		if err != nil {
			return nil, fmt.Errorf("service environment variables: %w", err)
		}
		for _, e := range env {
			service[e.Name] = e.Value
		}
	}
	lookup := func(name string) (string, bool) {
		if v, ok := vals[name]; ok {
			return v, true
		}
		v, ok := service[name]
		return v, ok
	}
	for i, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandVars(e.Value, lookup))
			continue
		}
		v, ok, err := w.envValueFrom(ctx, pod, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env[%d] (%s): %w", i, e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(service)) {
		if _, ok := vals[k]; !ok {
			set(k, service[k])
		}
	}
	out := make([]runtimes.EnvVar, len(names))
	for i, n := range names {
		out[i] = runtimes.EnvVar{Name: n, Value: vals[n]}
	}
	return out, nil
}

// expandArgs expands $(VAR) in a container's command or args from its
// final environment, as kubelet does.
func expandArgs(args []string, env []runtimes.EnvVar) []string {
	if len(args) == 0 {
		return args
	}
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	lookup := func(n string) (string, bool) { v, ok := m[n]; return v, ok }
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expandVars(a, lookup)
	}
	return out
}

// expandVars is Kubernetes' $(VAR) expansion (third_party/forked/golang/
// expansion): $(NAME) becomes NAME's value when lookup knows it and stays
// as written otherwise; $$ is a literal $; any other $ is kept.
func expandVars(in string, lookup func(string) (string, bool)) string {
	if !strings.Contains(in, "$") {
		return in
	}
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(in); cursor++ {
		if in[cursor] != '$' || cursor+1 >= len(in) {
			continue
		}
		b.WriteString(in[checkpoint:cursor])
		rest := in[cursor+1:]
		advance := 1
		switch rest[0] {
		case '$':
			b.WriteByte('$')
		case '(':
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				b.WriteString("$(")
				break
			}
			name := rest[1:end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			advance = end + 1
		default:
			b.WriteByte('$')
			b.WriteByte(rest[0])
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	b.WriteString(in[min(checkpoint, len(in)):])
	return b.String()
}

// podHostname is the pod's host name: spec.hostname or its name, the
// node's for a hostNetwork pod.
func (w *podWorker) podHostname(pod *api.Pod) string {
	if pod.Spec.HostNetwork && w.a.hostname != "" {
		return w.a.hostname
	}
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}

// isConfigNotFound reports whether err is a missing ConfigMap, Secret or
// key.
func isConfigNotFound(err error) bool { return errors.Is(err, errConfigNotFound) }

// configData returns the keys and values of the ConfigMap (data and
// binaryData) or Secret kind ns/name.
func (w *podWorker) configData(ctx context.Context, kind, ns, name string) (map[string][]byte, error) {
	obj, err := w.a.configs.get(ctx, kind, ns, name)
	if err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *api.ConfigMap:
		out := make(map[string][]byte, len(o.Data)+len(o.BinaryData))
		for k, v := range o.BinaryData {
			out[k] = v
		}
		for k, v := range o.Data {
			out[k] = []byte(v)
		}
		return out, nil
	case *api.Secret:
		return o.Data, nil
	}
	return nil, fmt.Errorf("%s %s/%s: unexpected %T", kind, ns, name, obj)
}

// configKeyValue returns one key of a ConfigMap or Secret; a missing key
// is an error naming it and the object, wrapping errConfigNotFound.
func (w *podWorker) configKeyValue(ctx context.Context, kind, ns, name, key string) ([]byte, error) {
	data, err := w.configData(ctx, kind, ns, name)
	if err != nil {
		return nil, err
	}
	v, ok := data[key]
	if !ok {
		return nil, fmt.Errorf("couldn't find key %s in %s %s/%s: %w", key, kind, ns, name, errConfigNotFound)
	}
	return v, nil
}

// envValueFrom resolves one valueFrom; ok is false when an optional
// source is missing (the variable is left out).
func (w *podWorker) envValueFrom(ctx context.Context, pod *api.Pod, c *api.Container, src *api.EnvVarSource) (string, bool, error) {
	keyRef := func(kind, name, key string, optional *bool) (string, bool, error) {
		v, err := w.configKeyValue(ctx, kind, pod.Namespace, name, key)
		if err != nil {
			if api.IsOptional(optional) && isConfigNotFound(err) {
				return "", false, nil
			}
			return "", false, err
		}
		return string(v), true, nil
	}
	switch {
	case src.ConfigMapKeyRef != nil:
		r := src.ConfigMapKeyRef
		return keyRef("ConfigMap", r.Name, r.Key, r.Optional)
	case src.SecretKeyRef != nil:
		r := src.SecretKeyRef
		return keyRef("Secret", r.Name, r.Key, r.Optional)
	case src.FieldRef != nil:
		v, err := w.podFieldValue(pod, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := w.resourceFieldValue(pod, c, src.ResourceFieldRef)
		return v, err == nil, err
	}
	return "", false, fmt.Errorf("valueFrom: no source")
}

// podFieldValue is the value of a downward API field path of pod.
func (w *podWorker) podFieldValue(pod *api.Pod, fieldPath string) (string, error) {
	if m, key, ok := api.SplitFieldSubscript(fieldPath); ok {
		if m == "labels" {
			return pod.Labels[key], nil
		}
		return pod.Annotations[key], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return pod.UID, nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return w.a.cfg.Name, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return w.a.nodeIP, nil
	case "status.podIP", "status.podIPs":
		if w.sandbox != nil && w.sandbox.IP != "" && !pod.Spec.HostNetwork {
			return w.sandbox.IP, nil
		}
		return w.a.nodeIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", fieldPath)
}

// formatMap is the downward API's file format of labels and annotations:
// one key="value" per line (the value quoted as Go does), sorted by key.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// resourceFieldValue is a container's request or limit divided by the
// divisor and rounded up, as kubelet's; an unset limit is the node's
// allocatable amount, an unset request 0.
func (w *podWorker) resourceFieldValue(pod *api.Pod, self *api.Container, r *api.ResourceFieldSelector) (string, error) {
	c := self
	if r.ContainerName != "" {
		c = nil
		for _, cs := range [][]api.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range cs {
				if cs[i].Name == r.ContainerName {
					c = &cs[i]
				}
			}
		}
		if c == nil {
			return "", fmt.Errorf("resourceFieldRef: no container %q", r.ContainerName)
		}
	}
	which, res, _ := strings.Cut(r.Resource, ".")
	name := api.ResourceName(res)
	var q resource.Quantity
	var ok bool
	if which == "limits" {
		q, ok = c.Resources.Limits[name]
		if !ok {
			q, ok = w.a.allocatable(name)
		}
	} else {
		q, ok = c.Resources.Requests[name]
	}
	if !ok {
		q = resource.Quantity{}
	}
	divisor := resource.MustParse("1")
	if r.Divisor != nil && r.Divisor.Sign() > 0 {
		divisor = *r.Divisor
	}
	if name == api.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// allocatable returns the node's allocatable amount of a resource, as
// last registered.
func (a *Agent) allocatable(name api.ResourceName) (resource.Quantity, bool) {
	a.nodeMu.Lock()
	defer a.nodeMu.Unlock()
	q, ok := a.node.Status.Allocatable[name]
	return q, ok
}
