package api

import (
	"strings"
)

// Default values set by Default.
const (
	DefaultSchedulerName                 = "default-scheduler"
	DefaultTerminationGracePeriodSeconds = int64(30)
	NamespaceActive                      = "Active"
	NamespaceTerminating                 = "Terminating"
)

// Default fills in the fields a manifest may leave out, as Kubernetes'
// defaulting does. It changes obj in place, never removes what is set (except
// a namespace on a cluster-scoped object, which is cleared) and is idempotent.
//
//   - apiVersion and kind: the kind's canonical values when empty;
//   - metadata.namespace: "default" for namespaced kinds when empty;
//   - Pod: restartPolicy Always, terminationGracePeriodSeconds 30,
//     schedulerName "default-scheduler", status.phase Pending; for every
//     container and init container: securityContext.procMount Default when
//     it has a securityContext, and with hostNetwork a port's hostPort is
//     its containerPort when unset (as Kubernetes; seccomp is not defaulted
//     here: the runtime applies RuntimeDefault when it is unset);
//     imagePullPolicy (Always for a `latest` or
//     missing tag, IfNotPresent otherwise and for wasm modules given as
//     file:// or kyb:// images), port protocol TCP, and requests copied from
//     limits for each resource that has a limit but no request; probes:
//     periodSeconds 10, timeoutSeconds 1, successThreshold 1,
//     failureThreshold 3, and an httpGet's path "/" and scheme HTTP;
//     tolerations of the node.kubernetes.io/not-ready and
//     node.kubernetes.io/unreachable NoExecute taints for 300 s each, unless
//     the pod already tolerates that taint (Kubernetes'
//     DefaultTolerationSeconds admission);
//   - Namespace: status.phase Active;
//   - ReplicaSet, Deployment: replicas 1, the template's pod spec as a
//     Pod's; a Deployment's strategy RollingUpdate with maxSurge and
//     maxUnavailable 25%, revisionHistoryLimit 10, progressDeadlineSeconds
//     600;
//   - RoleBinding, ClusterRoleBinding: roleRef.apiGroup and the apiGroup of
//     User and Group subjects rbac.authorization.k8s.io; a ServiceAccount
//     subject of a RoleBinding gets the binding's namespace when it has none;
//   - Job, CronJob: see defaultJob (batch.go), defaultCronJob (cronjob.go);
//   - Service: see defaultService (service_validate.go).
//
// Default panics on an object of no known kind. It is not safe for
// concurrent use on the same object.
func Default(obj Object) {
	k := KindOf(obj)
	k.FillTypeMeta(obj.GetTypeMeta())
	m := obj.GetObjectMeta()
	if k.Namespaced {
		if m.Namespace == "" {
			m.Namespace = DefaultNamespace
		}
	} else {
		m.Namespace = ""
	}
	switch o := obj.(type) {
	case *Pod:
		defaultPod(o)
	case *Namespace:
		if o.Status.Phase == "" {
			o.Status.Phase = NamespaceActive
		}
	case *RoleBinding, *ClusterRoleBinding:
		defaultRBAC(o)
	case *Job:
		defaultJob(o)
	case *CronJob:
		defaultCronJob(o)
	case *ReplicaSet:
		defaultReplicaSet(o)
	case *Deployment:
		defaultDeployment(o)
	case *DaemonSet:
		defaultDaemonSet(o)
	case *Service:
		defaultService(o)
	}
}

func defaultPod(p *Pod) {
	s := &p.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartPolicyAlways
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := DefaultTerminationGracePeriodSeconds
		s.TerminationGracePeriodSeconds = &g
	}
	if s.SchedulerName == "" {
		s.SchedulerName = DefaultSchedulerName
	}
	wasm := s.RuntimeClass() == RuntimeWasm
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i], wasm, s.HostNetwork)
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i], wasm, s.HostNetwork)
	}
	defaultTolerations(s)
	if p.Status.Phase == "" {
		p.Status.Phase = PodPending
	}
}

// defaultTolerations adds a 300 s toleration of each of the not-ready and
// unreachable NoExecute taints the pod does not tolerate yet, as
// Kubernetes' DefaultTolerationSeconds admission plugin does: so a pod
// outlives a short loss of its node, and is evicted (and replaced by its
// controller) when the loss lasts.
func defaultTolerations(s *PodSpec) {
	for _, key := range []string{TaintNodeNotReady, TaintNodeUnreachable} {
		taint := Taint{Key: key, Effect: TaintNoExecute}
		tolerated := false
		for i := range s.Tolerations {
			if s.Tolerations[i].ToleratesTaint(&taint) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			secs := DefaultTolerationSeconds
			s.Tolerations = append(s.Tolerations, Toleration{
				Key: key, Operator: TolerationOpExists, Effect: TaintNoExecute, TolerationSeconds: &secs,
			})
		}
	}
}

func defaultContainer(c *Container, wasm, hostNetwork bool) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = DefaultPullPolicy(c.Image, wasm)
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = ProtocolTCP
		}
		if hostNetwork && c.Ports[i].HostPort == 0 {
			c.Ports[i].HostPort = c.Ports[i].ContainerPort
		}
	}
	for _, pr := range []*Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(pr)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = DefaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = TerminationMessageReadFile
	}
	if c.SecurityContext != nil && c.SecurityContext.ProcMount == nil {
		pm := ProcMountDefault
		c.SecurityContext.ProcMount = &pm
	}
	// As Kubernetes: a resource with a limit and no request requests its limit.
	for name, limit := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; ok {
			continue
		}
		if c.Resources.Requests == nil {
			c.Resources.Requests = ResourceList{}
		}
		c.Resources.Requests[name] = limit.DeepCopy()
	}
}

// Probe defaults, as Kubernetes'.
const (
	DefaultProbePeriodSeconds    = int32(10)
	DefaultProbeTimeoutSeconds   = int32(1)
	DefaultProbeSuccessThreshold = int32(1)
	DefaultProbeFailureThreshold = int32(3)
)

func defaultProbe(p *Probe) {
	if p == nil {
		return
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = DefaultProbePeriodSeconds
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = DefaultProbeTimeoutSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultProbeFailureThreshold
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = URISchemeHTTP
		}
	}
}

// DefaultPullPolicy returns the pull policy Kubernetes gives an image:
// Always when its tag is `latest` or it has neither tag nor digest,
// IfNotPresent otherwise. Wasm modules named by a file:// or kyb:// image
// (a local file, a module in the cluster's object store) get IfNotPresent.
func DefaultPullPolicy(image string, wasm bool) PullPolicy {
	if wasm && (strings.HasPrefix(image, "file://") || strings.HasPrefix(image, "kyb://")) {
		return PullIfNotPresent
	}
	tag, digest := imageTagDigest(image)
	if digest != "" {
		return PullIfNotPresent
	}
	if tag == "" || tag == "latest" {
		return PullAlways
	}
	return PullIfNotPresent
}

// imageTagDigest returns the tag and the digest of an image reference; the
// colon of a registry port (`host:5000/app`) is not a tag.
func imageTagDigest(image string) (tag, digest string) {
	ref, digest, _ := strings.Cut(image, "@")
	last := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		last = ref[i+1:]
	}
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag = last[i+1:]
	}
	return tag, digest
}
