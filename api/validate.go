package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks an object as Kubernetes' validation does and returns nil
// or a *Status with code 422 (Invalid) that lists every problem as a
// StatusCause with its field path, e.g. `spec.containers[0].image: required`.
//
// Validate is meant for defaulted objects but accepts an empty restartPolicy
// and port protocol (Default sets them). It panics on an object of no known
// kind and is safe for concurrent use as long as obj is not being changed.
func Validate(obj Object) error {
	k := KindOf(obj)
	var e errs
	validateObjectMeta(&e, k, obj.GetObjectMeta(), field.NewPath("metadata"))
	switch o := obj.(type) {
	case *Pod:
		validatePodSpec(&e, &o.Spec, field.NewPath("spec"))
		validatePodAnnotations(&e, o.Annotations, &o.Spec, field.NewPath("metadata", "annotations"))
	case *Node:
		validateNode(&e, o)
	case *Role, *ClusterRole, *RoleBinding, *ClusterRoleBinding:
		validateRBAC(&e, o)
	case *Job:
		validateJob(&e, o)
	case *CronJob:
		validateCronJob(&e, o)
	case *ReplicaSet:
		validateReplicaSet(&e, o)
	case *Deployment:
		validateDeployment(&e, o)
	case *DaemonSet:
		validateDaemonSet(&e, o)
	case *Service:
		validateService(&e, o)
	case *EndpointSlice:
		validateEndpointSlice(&e, o)
	case *ConfigMap:
		validateConfigMap(&e, o)
	case *Secret:
		validateSecret(&e, o)
	case *StatefulSet:
		validateStatefulSet(&e, o)
	case *ControllerRevision:
		validateControllerRevision(&e, o)
	case *StorageClass:
		validateStorageClass(&e, o)
	case *PersistentVolume:
		validatePV(&e, o)
	case *PersistentVolumeClaim:
		validatePVC(&e, o)
	case *Namespace:
		if v, ok := o.Labels[LabelPodSecurityEnforce]; ok && !slices.Contains(PodSecurityLevels, v) {
			e.unsupported(field.NewPath("metadata", "labels").Key(LabelPodSecurityEnforce), v, PodSecurityLevels...)
		}
		if v, ok := o.Labels[LabelPodSecurityEnforceVersion]; ok && v != "latest" && !podSecurityVersionRE.MatchString(v) {
			e.add(field.NewPath("metadata", "labels").Key(LabelPodSecurityEnforceVersion), "invalid value %q: must be \"latest\" or \"v1.<minor>\"", v)
		}
		switch o.Status.Phase {
		case "", NamespaceActive, NamespaceTerminating:
		default:
			e.unsupported(field.NewPath("status", "phase"), o.Status.Phase, NamespaceActive, NamespaceTerminating)
		}
	}
	return e.status(k.Name, obj.GetObjectMeta().Name)
}

// ValidateUpdate validates new as Validate does and checks the change from
// old: name and namespace never change; for a Pod, spec.nodeName may only be
// set once (from empty), spec.runtimeClassName never changes, and, as in
// Kubernetes, the only other spec changes allowed are the images of
// containers and init containers, added tolerations and
// terminationGracePeriodSeconds. It returns nil or a 422 *Status naming every
// problem. old and new must be of the same kind. It is safe for concurrent use
// as long as neither object is being changed.
func ValidateUpdate(old, new Object) error {
	k := KindOf(new)
	var e errs
	if ok := KindOf(old); ok != k {
		e.add(field.NewPath("kind"), "field is immutable (was %s)", ok.Name)
		return e.status(k.Name, new.GetObjectMeta().Name)
	}
	if err := Validate(new); err != nil {
		if st, ok := err.(*Status); ok {
			e = append(e, st.Causes...)
		}
	}
	om, nm := old.GetObjectMeta(), new.GetObjectMeta()
	if om.Name != nm.Name {
		e.add(field.NewPath("metadata", "name"), "field is immutable")
	}
	if k.Namespaced && om.Namespace != nm.Namespace {
		e.add(field.NewPath("metadata", "namespace"), "field is immutable")
	}
	if om.UID != "" && nm.UID != "" && om.UID != nm.UID {
		e.add(field.NewPath("metadata", "uid"), "field is immutable")
	}
	if op, ok := old.(*Pod); ok {
		validatePodUpdate(&e, op, new.(*Pod))
	}
	validateBindingUpdate(&e, old, new)
	if oj, ok := old.(*Job); ok {
		validateJobUpdate(&e, oj, new.(*Job))
	}
	validateWorkloadUpdate(&e, old, new)
	if os, ok := old.(*Service); ok {
		validateServiceUpdate(&e, os, new.(*Service))
	}
	validateConfigUpdate(&e, old, new)
	validateStorageUpdate(&e, old, new)
	if os, ok := old.(*StatefulSet); ok {
		validateStatefulSetUpdate(&e, os, new.(*StatefulSet))
	}
	if or, ok := old.(*ControllerRevision); ok {
		validateControllerRevisionUpdate(&e, or, new.(*ControllerRevision))
	}
	return e.status(k.Name, nm.Name)
}

func validatePodUpdate(e *errs, old, new *Pod) {
	spec := field.NewPath("spec")
	if old.Spec.NodeName != "" && new.Spec.NodeName != old.Spec.NodeName {
		e.add(spec.Child("nodeName"), "field is immutable once set (was %q)", old.Spec.NodeName)
	}
	if old.Spec.RuntimeClass() != new.Spec.RuntimeClass() {
		e.add(spec.Child("runtimeClassName"), "field is immutable (was %q)", old.Spec.RuntimeClass())
	}
	for _, t := range old.Spec.Tolerations {
		if !slices.ContainsFunc(new.Spec.Tolerations, func(n Toleration) bool { return reflect.DeepEqual(t, n) }) {
			e.add(spec.Child("tolerations"), "existing toleration may not be removed or changed (key %q)", t.Key)
			break
		}
	}
	// Everything else must be as before: copy the mutable fields from new
	// onto old and compare.
	mut := old.Spec
	mut.NodeName = new.Spec.NodeName
	mut.RuntimeClassName = new.Spec.RuntimeClassName
	mut.Tolerations = new.Spec.Tolerations
	mut.TerminationGracePeriodSeconds = new.Spec.TerminationGracePeriodSeconds
	mut.Containers = withImages(old.Spec.Containers, new.Spec.Containers)
	mut.InitContainers = withImages(old.Spec.InitContainers, new.Spec.InitContainers)
	if !jsonEqual(mut, new.Spec) {
		e.add(spec, "pod updates may not change fields other than spec.containers[*].image, spec.initContainers[*].image, spec.tolerations (additions), spec.terminationGracePeriodSeconds and spec.nodeName (set once)")
	}
}

// withImages returns a copy of old with the images of new, when both have
// the same number of containers.
func withImages(old, new []Container) []Container {
	if len(old) != len(new) {
		return old
	}
	out := slices.Clone(old)
	for i := range out {
		out[i].Image = new[i].Image
	}
	return out
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// errs collects validation problems.
type errs []StatusCause

func (e *errs) add(p *field.Path, format string, args ...any) {
	*e = append(*e, StatusCause{Field: p.String(), Message: fmt.Sprintf(format, args...)})
}

func (e *errs) addAll(p *field.Path, msgs []string) {
	for _, m := range msgs {
		e.add(p, "%s", m)
	}
}

func (e *errs) required(p *field.Path) { e.add(p, "required") }

// labelValue checks v as a label value (labels, toleration and taint values).
func (e *errs) labelValue(p *field.Path, v string) {
	for _, msg := range validation.IsValidLabelValue(v) {
		e.add(p, "invalid value %q: %s", v, msg)
	}
}

func (e *errs) unsupported(p *field.Path, v string, allowed ...string) {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = fmt.Sprintf("%q", a)
	}
	e.add(p, "unsupported value %q: supported values: %s", v, strings.Join(q, ", "))
}

func (e errs) status(kind, name string) error {
	if len(e) == 0 {
		return nil
	}
	return NewInvalid(kind, name, e)
}

// labelNamedKinds are the kinds whose names are DNS-1123 labels (no dots);
// every other kind's name is a DNS-1123 subdomain, as in Kubernetes.
var labelNamedKinds = map[string]bool{"Pod": true, "Node": true, "Namespace": true, "Service": true, "StatefulSet": true}

// ValidateName returns what is wrong with name as the name of an object of
// kind k (nothing when it is valid): a DNS-1123 label for pods, nodes and
// namespaces, a DNS-1035 label (a letter first) for services, a DNS-1123
// subdomain for other kinds (where the RBAC kinds also accept ':', as in
// system:node).
func ValidateName(k *Kind, name string) []string {
	if isRBACKind(k) {
		return validateRBACName(name)
	}
	if k.Name == "Service" {
		// As Kubernetes: a DNS-1035 label (a letter first), since the name
		// becomes a DNS label and FOO_SERVICE_HOST variables.
		return validation.IsDNS1035Label(name)
	}
	if labelNamedKinds[k.Name] {
		return validation.IsDNS1123Label(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

// totalAnnotationSizeLimit is Kubernetes' limit on the size of all annotations.
const totalAnnotationSizeLimit = 256 * 1024

func validateObjectMeta(e *errs, k *Kind, m *ObjectMeta, p *field.Path) {
	switch {
	case m.Name != "":
		e.addAll(p.Child("name"), ValidateName(k, m.Name))
	case m.GenerateName != "":
		// The server appends a random suffix; the prefix must be valid.
		e.addAll(p.Child("generateName"), ValidateName(k, strings.TrimSuffix(m.GenerateName, "-")))
	default:
		e.add(p.Child("name"), "required (or generateName)")
	}
	if k.Namespaced {
		if m.Namespace != "" {
			e.addAll(p.Child("namespace"), validation.IsDNS1123Label(m.Namespace))
		}
	} else if m.Namespace != "" {
		e.add(p.Child("namespace"), "must be empty: %s is cluster-scoped", k.Name)
	}
	validateLabels(e, m.Labels, p.Child("labels"))
	size := 0
	for key, v := range m.Annotations {
		e.addAll(p.Child("annotations").Key(key), validation.IsQualifiedName(strings.ToLower(key)))
		size += len(key) + len(v)
	}
	if size > totalAnnotationSizeLimit {
		e.add(p.Child("annotations"), "too long: must have at most %d bytes", totalAnnotationSizeLimit)
	}
	if m.Generation < 0 {
		e.add(p.Child("generation"), "must be greater than or equal to 0")
	}
	for i, f := range m.Finalizers {
		e.addAll(p.Child("finalizers").Index(i), validation.IsQualifiedName(f))
	}
	for i, r := range m.OwnerReferences {
		rp := p.Child("ownerReferences").Index(i)
		if r.Kind == "" {
			e.required(rp.Child("kind"))
		}
		if r.Name == "" {
			e.required(rp.Child("name"))
		}
		if r.UID == "" {
			e.required(rp.Child("uid"))
		}
	}
}

// validateLabels checks label keys (qualified names) and values (label values).
func validateLabels(e *errs, labels map[string]string, p *field.Path) {
	for _, key := range sortedKeys(labels) {
		kp := p.Key(key)
		e.addAll(kp, validation.IsQualifiedName(key))
		e.labelValue(kp, labels[key])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var runtimeClasses = []string{"", RuntimeContainerd, RuntimeWasm}

// noWasmTTY is why a wasm container may not have tty.
const noWasmTTY = "not supported for wasm pods: a WASI module has no terminal (no ioctls, no line discipline); use stdin without tty"

func validatePodSpec(e *errs, s *PodSpec, p *field.Path) {
	wasm := s.RuntimeClass() == RuntimeWasm
	containers := map[string]bool{}
	for _, cs := range [][]Container{s.InitContainers, s.Containers} {
		for _, c := range cs {
			containers[c.Name] = true
		}
	}
	volumes := map[string]bool{}
	for i, v := range s.Volumes {
		vp := p.Child("volumes").Index(i)
		validateUniqueName(e, v.Name, vp.Child("name"), volumes)
		validateVolumeSource(e, &v, vp, wasm, containers)
	}
	validateImagePullSecrets(e, s, p)
	if len(s.Containers) == 0 {
		e.add(p.Child("containers"), "required: a pod must have at least one container")
	}
	if s.Subdomain != "" {
		e.addAll(p.Child("subdomain"), validation.IsDNS1123Label(s.Subdomain))
	}
	names := map[string]bool{}
	for i := range s.InitContainers {
		ip := p.Child("initContainers").Index(i)
		c := &s.InitContainers[i]
		validateContainer(e, c, ip, names, volumes)
		validateEnvSources(e, c, ip, containers)
		// As Kubernetes: an init container runs to completion; probes
		// have nothing to watch (sidecars, restartPolicy Always, are not
		// implemented).
		for _, pr := range []struct {
			name  string
			probe *Probe
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
			if pr.probe != nil {
				e.add(ip.Child(pr.name), "forbidden: init containers may not have probes")
			}
		}
		if c.Lifecycle != nil {
			e.add(ip.Child("lifecycle"), "forbidden: init containers may not have lifecycle hooks")
		}
	}
	for i := range s.Containers {
		cp := p.Child("containers").Index(i)
		c := &s.Containers[i]
		validateContainer(e, c, cp, names, volumes)
		validateEnvSources(e, c, cp, containers)
		validateProbe(e, c.LivenessProbe, c, cp.Child("livenessProbe"), true)
		validateProbe(e, c.ReadinessProbe, c, cp.Child("readinessProbe"), false)
		validateProbe(e, c.StartupProbe, c, cp.Child("startupProbe"), true)
		if c.Lifecycle != nil {
			validateHook(e, c.Lifecycle.PostStart, c, cp.Child("lifecycle", "postStart"))
			validateHook(e, c.Lifecycle.PreStop, c, cp.Child("lifecycle", "preStop"))
		}
	}
	for i := range s.InitContainers {
		validateSecurityContext(e, s.InitContainers[i].SecurityContext, p.Child("initContainers").Index(i).Child("securityContext"), wasm)
		if wasm && s.InitContainers[i].TTY {
			e.add(p.Child("initContainers").Index(i).Child("tty"), noWasmTTY)
		}
	}
	for i := range s.Containers {
		if wasm && s.Containers[i].TTY {
			e.add(p.Child("containers").Index(i).Child("tty"), noWasmTTY)
		}
		if wasm && s.Containers[i].Stdin && len(s.Containers[i].Ports) > 0 {
			e.add(p.Child("containers").Index(i).Child("stdin"), "not supported for a wasm container that declares ports: it serves them the WAGI way, with each request's body on stdin")
		}
	}
	for i := range s.Containers {
		validateSecurityContext(e, s.Containers[i].SecurityContext, p.Child("containers").Index(i).Child("securityContext"), wasm)
	}
	validatePodSecurity(e, s, p)
	switch s.RestartPolicy {
	case "", RestartPolicyAlways, RestartPolicyOnFailure, RestartPolicyNever:
	default:
		e.unsupported(p.Child("restartPolicy"), string(s.RestartPolicy), string(RestartPolicyAlways), string(RestartPolicyOnFailure), string(RestartPolicyNever))
	}
	if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds < 0 {
		e.add(p.Child("terminationGracePeriodSeconds"), "must be greater than or equal to 0")
	}
	if s.RuntimeClassName != nil && !slices.Contains(runtimeClasses, *s.RuntimeClassName) {
		e.unsupported(p.Child("runtimeClassName"), *s.RuntimeClassName, runtimeClasses...)
	}
	if s.NodeName != "" {
		e.addAll(p.Child("nodeName"), validation.IsDNS1123Label(s.NodeName))
	}
	if s.Hostname != "" {
		e.addAll(p.Child("hostname"), validation.IsDNS1123Label(s.Hostname))
	}
	if s.Subdomain != "" {
		e.addAll(p.Child("subdomain"), validation.IsDNS1123Label(s.Subdomain))
	}
	if s.SchedulerName != "" {
		e.addAll(p.Child("schedulerName"), validation.IsDNS1123Subdomain(s.SchedulerName))
	}
	validatePodDNS(e, s, p)
	validateLabels(e, s.NodeSelector, p.Child("nodeSelector"))
	for i := range s.Tolerations {
		validateToleration(e, &s.Tolerations[i], p.Child("tolerations").Index(i))
	}
}

var hostPathTypes = []string{"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"}

func validateVolumeSource(e *errs, v *Volume, p *field.Path, wasm bool, containers map[string]bool) {
	n := validateConfigVolume(e, v, p, containers)
	if v.EmptyDir != nil {
		n++
		ep := p.Child("emptyDir")
		switch v.EmptyDir.Medium {
		case "":
		case StorageMediumMemory:
			if wasm {
				e.add(ep.Child("medium"), "not supported for wasm pods: a module's volumes are directories of the node's disk")
			}
		default:
			e.unsupported(ep.Child("medium"), v.EmptyDir.Medium, "", StorageMediumMemory)
		}
		if v.EmptyDir.SizeLimit != nil {
			validateNonNegative(e, *v.EmptyDir.SizeLimit, ep.Child("sizeLimit"))
			if wasm {
				e.add(ep.Child("sizeLimit"), "not supported for wasm pods: only the containerd runtime enforces it")
			}
		}
	}
	if v.HostPath != nil {
		n++
		hp := p.Child("hostPath")
		switch hpath := v.HostPath.Path; {
		case hpath == "":
			e.required(hp.Child("path"))
		case !strings.HasPrefix(hpath, "/") || path.Clean(hpath) != hpath || strings.ContainsRune(hpath, 0):
			// The agent refuses anything else (it would not know which host
			// path is meant); say so at apply time.
			e.add(hp.Child("path"), "must be an absolute, clean path (no '..', '.', '//' or trailing '/')")
		}
		if !slices.Contains(hostPathTypes, v.HostPath.Type) {
			e.unsupported(hp.Child("type"), v.HostPath.Type, hostPathTypes...)
		}
	}
	if v.PersistentVolumeClaim != nil {
		n++
		validatePVCVolumeSource(e, v.PersistentVolumeClaim, p)
	}
	switch n {
	case 0:
		e.add(p, "must specify exactly one volume source (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim)")
	case 1:
	default:
		e.add(p, "may not specify more than one volume source")
	}
}

// validateUniqueName checks a required DNS-1123 label name that must not be
// in seen, and adds it to seen.
func validateUniqueName(e *errs, name string, p *field.Path, seen map[string]bool) {
	switch {
	case name == "":
		e.required(p)
	case seen[name]:
		e.add(p, "duplicate value %q", name)
	default:
		e.addAll(p, validation.IsDNS1123Label(name))
	}
	seen[name] = true
}

func validateContainer(e *errs, c *Container, p *field.Path, names, volumes map[string]bool) {
	validateUniqueName(e, c.Name, p.Child("name"), names)
	switch {
	case c.Image == "":
		e.required(p.Child("image"))
	case strings.TrimSpace(c.Image) != c.Image:
		e.add(p.Child("image"), "must not have leading or trailing whitespace")
	}
	switch c.ImagePullPolicy {
	case "", PullAlways, PullIfNotPresent, PullNever:
	default:
		e.unsupported(p.Child("imagePullPolicy"), string(c.ImagePullPolicy), string(PullAlways), string(PullIfNotPresent), string(PullNever))
	}
	for i, env := range c.Env {
		ep := p.Child("env").Index(i).Child("name")
		if env.Name == "" {
			e.required(ep)
		} else if strings.Contains(env.Name, "=") {
			e.add(ep, "must not contain '='")
		}
	}
	portNames := map[string]bool{}
	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		if port.Name != "" {
			if portNames[port.Name] {
				e.add(pp.Child("name"), "duplicate value %q", port.Name)
			} else {
				e.addAll(pp.Child("name"), validation.IsValidPortName(port.Name))
			}
			portNames[port.Name] = true
		}
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			e.add(pp.Child("containerPort"), "must be between 1 and 65535, inclusive (got %d)", port.ContainerPort)
		}
		if port.HostPort < 0 || port.HostPort > 65535 {
			e.add(pp.Child("hostPort"), "must be between 0 and 65535, inclusive (got %d)", port.HostPort)
		}
		switch port.Protocol {
		case "", ProtocolTCP, ProtocolUDP, ProtocolSCTP:
		default:
			e.unsupported(pp.Child("protocol"), string(port.Protocol), string(ProtocolTCP), string(ProtocolUDP), string(ProtocolSCTP))
		}
	}
	validateResources(e, &c.Resources, p.Child("resources"))
	mountPaths := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		switch {
		case m.Name == "":
			e.required(mp.Child("name"))
		case !volumes[m.Name]:
			e.add(mp.Child("name"), "not found: no volume named %q in spec.volumes", m.Name)
		}
		switch {
		case m.MountPath == "":
			e.required(mp.Child("mountPath"))
		case !path.IsAbs(m.MountPath):
			e.add(mp.Child("mountPath"), "must be an absolute path (got %q)", m.MountPath)
		case mountPaths[path.Clean(m.MountPath)]:
			e.add(mp.Child("mountPath"), "must be unique (%q is mounted twice)", m.MountPath)
		}
		mountPaths[path.Clean(m.MountPath)] = true
	}
	tp := p.Child("terminationMessagePath")
	switch t := c.TerminationMessagePath; {
	case t == "":
	case !path.IsAbs(t):
		e.add(tp, "must be an absolute path (got %q)", t)
	case len(t) > 4096:
		e.add(tp, "must be no more than 4096 characters")
	case path.Clean(t) == "/" || strings.HasSuffix(t, "/"):
		e.add(tp, "must name a file (got %q)", t)
	case mountPaths[path.Clean(t)]:
		e.add(tp, "must not be a volume's mountPath (%q)", t)
	}
	switch c.TerminationMessagePolicy {
	case "", TerminationMessageReadFile, TerminationMessageFallbackToLogsOnError:
	default:
		e.unsupported(p.Child("terminationMessagePolicy"), string(c.TerminationMessagePolicy), string(TerminationMessageReadFile), string(TerminationMessageFallbackToLogsOnError))
	}
}

// validateHook checks a postStart or preStop hook of container c: exactly
// one of exec, httpGet and sleep, each checked as a probe's; tcpSocket is
// refused, as Kubernetes never ran it.
func validateHook(e *errs, h *LifecycleHandler, c *Container, p *field.Path) {
	if h == nil {
		return
	}
	n := 0
	if h.Exec != nil {
		n++
	}
	if h.HTTPGet != nil {
		n++
	}
	if h.Sleep != nil {
		n++
		if h.Sleep.Seconds <= 0 {
			e.add(p.Child("sleep", "seconds"), "must be greater than 0 (got %d)", h.Sleep.Seconds)
		}
	}
	if h.TCPSocket != nil {
		n++
		e.add(p.Child("tcpSocket"), "not supported: a hook is exec, httpGet or sleep (Kubernetes never ran tcpSocket hooks)")
	}
	switch n {
	case 0:
		e.add(p, "must specify a handler type: one of exec, httpGet, sleep")
	case 1:
		if h.Exec != nil || h.HTTPGet != nil {
			validateProbe(e, &Probe{ProbeHandler: ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet}}, c, p, false)
		}
	default:
		e.add(p, "may not specify more than one handler type (exec, httpGet, sleep, tcpSocket)")
	}
}

// validateProbe checks one probe of container c, as Kubernetes does:
// exactly one handler, non-negative timings (positive once defaulted),
// successThreshold 1 for liveness and startup probes (one), a port that is
// a number from 1 to 65535 or the name of one of c's ports. A gRPC probe is
// refused: the agent does not implement it.
func validateProbe(e *errs, pr *Probe, c *Container, p *field.Path, one bool) {
	if pr == nil {
		return
	}
	n := 0
	if pr.Exec != nil {
		n++
		if len(pr.Exec.Command) == 0 {
			e.required(p.Child("exec", "command"))
		}
	}
	if h := pr.HTTPGet; h != nil {
		n++
		hp := p.Child("httpGet")
		validateProbePort(e, h.Port, c, hp.Child("port"))
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			e.add(hp.Child("path"), "must be an absolute path (got %q)", h.Path)
		}
		switch h.Scheme {
		case "", URISchemeHTTP, URISchemeHTTPS:
		default:
			e.unsupported(hp.Child("scheme"), string(h.Scheme), string(URISchemeHTTP), string(URISchemeHTTPS))
		}
		for i, hd := range h.HTTPHeaders {
			if hd.Name == "" || strings.ContainsAny(hd.Name, " :\r\n") {
				e.add(hp.Child("httpHeaders").Index(i).Child("name"), "must be a valid HTTP header name (got %q)", hd.Name)
			}
			if strings.ContainsAny(hd.Value, "\r\n") {
				e.add(hp.Child("httpHeaders").Index(i).Child("value"), "must not contain a line break")
			}
		}
		if h.Host != "" && strings.ContainsAny(h.Host, "/ ") {
			e.add(hp.Child("host"), "must be a host name or IP address (got %q)", h.Host)
		}
	}
	if t := pr.TCPSocket; t != nil {
		n++
		validateProbePort(e, t.Port, c, p.Child("tcpSocket", "port"))
		if t.Host != "" && strings.ContainsAny(t.Host, "/ ") {
			e.add(p.Child("tcpSocket", "host"), "must be a host name or IP address (got %q)", t.Host)
		}
	}
	if pr.GRPC != nil {
		n++
		e.add(p.Child("grpc"), "not supported: kybernetes implements exec, httpGet and tcpSocket probes")
	}
	switch n {
	case 0:
		e.add(p, "must specify a handler type: one of exec, httpGet, tcpSocket")
	case 1:
	default:
		e.add(p, "may not specify more than one handler type (exec, httpGet, tcpSocket, grpc)")
	}
	for _, f := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds}, {"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold}} {
		if f.v < 0 {
			e.add(p.Child(f.name), "must be greater than or equal to 0 (got %d)", f.v)
		}
	}
	if one && pr.SuccessThreshold > 1 {
		e.add(p.Child("successThreshold"), "must be 1 (got %d)", pr.SuccessThreshold)
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		switch {
		case !one:
			e.add(p.Child("terminationGracePeriodSeconds"), "forbidden: only liveness and startup probes may set it")
		case *g <= 0:
			e.add(p.Child("terminationGracePeriodSeconds"), "must be greater than 0 (got %d)", *g)
		}
	}
}

func validateProbePort(e *errs, port IntOrString, c *Container, p *field.Path) {
	if !port.IsString {
		if port.IntVal < 1 || port.IntVal > 65535 {
			e.add(p, "must be between 1 and 65535, inclusive (got %d)", port.IntVal)
		}
		return
	}
	if msgs := validation.IsValidPortName(port.StrVal); len(msgs) > 0 {
		e.addAll(p, msgs)
		return
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return
		}
	}
	e.add(p, "not found: the container has no port named %q", port.StrVal)
}

func validateResources(e *errs, r *ResourceRequirements, p *field.Path) {
	for _, part := range []struct {
		name string
		list ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, name := range sortedKeys(r2s(part.list)) {
			rp := p.Child(part.name).Child(name)
			e.addAll(rp, validation.IsQualifiedName(name))
			validateNonNegative(e, part.list[ResourceName(name)], rp)
		}
	}
	for _, name := range sortedKeys(r2s(r.Limits)) {
		limit := r.Limits[ResourceName(name)]
		if req, ok := r.Requests[ResourceName(name)]; ok && limit.Cmp(req) < 0 {
			e.add(p.Child("limits").Child(name), "must be greater than or equal to request (%s < %s)", limit.String(), req.String())
		}
	}
}

// r2s views a ResourceList as a map with string keys, for sortedKeys.
func r2s(l ResourceList) map[string]struct{} {
	m := make(map[string]struct{}, len(l))
	for k := range l {
		m[string(k)] = struct{}{}
	}
	return m
}

func validateNonNegative(e *errs, q resource.Quantity, p *field.Path) {
	if q.Sign() < 0 {
		e.add(p, "must be greater than or equal to 0 (got %s)", q.String())
	}
}

var taintEffects = []string{string(TaintNoSchedule), string(TaintPreferNoSchedule), string(TaintNoExecute)}

func validateToleration(e *errs, t *Toleration, p *field.Path) {
	if t.Key != "" {
		e.addAll(p.Child("key"), validation.IsQualifiedName(t.Key))
	}
	switch t.Operator {
	case "", TolerationOpEqual:
		if t.Key == "" {
			e.add(p.Child("operator"), "must be Exists when key is empty")
		}
		e.labelValue(p.Child("value"), t.Value)
	case TolerationOpExists:
		if t.Value != "" {
			e.add(p.Child("value"), "must be empty when operator is Exists")
		}
	default:
		e.unsupported(p.Child("operator"), string(t.Operator), string(TolerationOpEqual), string(TolerationOpExists))
	}
	if t.Effect != "" && !slices.Contains(taintEffects, string(t.Effect)) {
		e.unsupported(p.Child("effect"), string(t.Effect), taintEffects...)
	}
	if t.TolerationSeconds != nil && t.Effect != TaintNoExecute {
		e.add(p.Child("tolerationSeconds"), "must be unset unless effect is NoExecute")
	}
}

func validateNode(e *errs, n *Node) {
	sp := field.NewPath("spec")
	type keyEffect struct {
		key    string
		effect TaintEffect
	}
	seen := map[keyEffect]bool{}
	for i, t := range n.Spec.Taints {
		tp := sp.Child("taints").Index(i)
		if t.Key == "" {
			e.required(tp.Child("key"))
		} else {
			e.addAll(tp.Child("key"), validation.IsQualifiedName(t.Key))
		}
		e.labelValue(tp.Child("value"), t.Value)
		switch {
		case t.Effect == "":
			e.required(tp.Child("effect"))
		case !slices.Contains(taintEffects, string(t.Effect)):
			e.unsupported(tp.Child("effect"), string(t.Effect), taintEffects...)
		}
		ke := keyEffect{t.Key, t.Effect}
		if seen[ke] {
			e.add(tp, "duplicate taint: key %q and effect %q are already used", t.Key, t.Effect)
		}
		seen[ke] = true
	}
	st := field.NewPath("status")
	for _, part := range []struct {
		name string
		list ResourceList
	}{{"capacity", n.Status.Capacity}, {"allocatable", n.Status.Allocatable}} {
		for _, name := range sortedKeys(r2s(part.list)) {
			validateNonNegative(e, part.list[ResourceName(name)], st.Child(part.name).Child(name))
		}
	}
}
