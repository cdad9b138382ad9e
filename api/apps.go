package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// AppsVersion is the apiVersion of the workload kinds (Deployment,
// ReplicaSet), as Kubernetes' apps/v1.
const AppsVersion = "apps/v1"

// Labels and annotations the workload controllers set.
const (
	// LabelPodTemplateHash is set by the Deployment controller on each of
	// its ReplicaSets (and their selector and pod template) to a hash of
	// the pod template, so that the ReplicaSets of one Deployment never
	// select each other's pods.
	LabelPodTemplateHash = "pod-template-hash"
	// AnnotationRevision is a Deployment's rollout revision, on it and on
	// each of its ReplicaSets (the revision that ReplicaSet last served).
	AnnotationRevision = "deployment.kubernetes.io/revision"
	// AnnotationRevisionHistory lists earlier revisions a ReplicaSet served
	// (comma-separated), when a rollback made it current again.
	AnnotationRevisionHistory = "deployment.kubernetes.io/revision-history"
	// AnnotationDesiredReplicas and AnnotationMaxReplicas are set on a
	// Deployment's ReplicaSets, as Kubernetes does.
	AnnotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	AnnotationMaxReplicas     = "deployment.kubernetes.io/max-replicas"
	// AnnotationRestartedAt on a pod template is what `kyb rollout restart`
	// changes (as kubectl's kubectl.kubernetes.io/restartedAt).
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	// AnnotationChangeCause records why a revision was made (shown by
	// `kyb rollout history`).
	AnnotationChangeCause = "kubernetes.io/change-cause"
)

// Deletion propagation policies (DeleteRequest.PropagationPolicy) and the
// finalizers that carry the two that wait, as Kubernetes'.
const (
	DeletePropagationBackground = "Background"
	DeletePropagationForeground = "Foreground"
	DeletePropagationOrphan     = "Orphan"
	FinalizerOrphanDependents   = "orphan"
	FinalizerDeleteDependents   = "foregroundDeletion"
)

// ReplicaSet keeps a number of pods that match its selector running.
type ReplicaSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ReplicaSetSpec   `json:"spec"`
	Status     ReplicaSetStatus `json:"status,omitzero"`
}

// ReplicaSetSpec is the desired state of a ReplicaSet.
type ReplicaSetSpec struct {
	// Replicas is the number of pods wanted; default 1.
	Replicas *int32 `json:"replicas,omitempty"`
	// MinReadySeconds is how long a pod must be Ready before it counts as
	// available.
	MinReadySeconds int32           `json:"minReadySeconds,omitempty"`
	Selector        *LabelSelector  `json:"selector"`
	Template        PodTemplateSpec `json:"template"`
}

// ReplicaSetStatus is the observed state of a ReplicaSet, written by its
// controller.
type ReplicaSetStatus struct {
	Replicas             int32 `json:"replicas"`
	FullyLabeledReplicas int32 `json:"fullyLabeledReplicas,omitempty"`
	ReadyReplicas        int32 `json:"readyReplicas,omitempty"`
	AvailableReplicas    int32 `json:"availableReplicas,omitempty"`
	ObservedGeneration   int64 `json:"observedGeneration,omitempty"`
}

// Deployment declares an application: a pod template and a number of
// replicas, rolled out to new templates by a strategy.
type Deployment struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       DeploymentSpec   `json:"spec"`
	Status     DeploymentStatus `json:"status,omitzero"`
}

// DeploymentSpec is the desired state of a Deployment.
type DeploymentSpec struct {
	// Replicas is the number of pods wanted; default 1.
	Replicas *int32             `json:"replicas,omitempty"`
	Selector *LabelSelector     `json:"selector"`
	Template PodTemplateSpec    `json:"template"`
	Strategy DeploymentStrategy `json:"strategy,omitzero"`
	// MinReadySeconds is how long a pod must be Ready before it counts as
	// available.
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`
	// RevisionHistoryLimit is how many old (scaled-down) ReplicaSets are
	// kept for rollback; default 10.
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
	// Paused stops the controller from rolling out template changes.
	Paused bool `json:"paused,omitempty"`
	// ProgressDeadlineSeconds is how long a rollout may make no progress
	// before it is reported as failed (ProgressDeadlineExceeded); default 600.
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// Deployment strategy types.
const (
	RecreateDeploymentStrategyType      = "Recreate"
	RollingUpdateDeploymentStrategyType = "RollingUpdate"
)

// DeploymentStrategy says how pods of an old template are replaced.
type DeploymentStrategy struct {
	// Type is RollingUpdate (the default) or Recreate.
	Type          string                   `json:"type,omitempty"`
	RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDeployment bounds a rolling update: at most maxUnavailable
// of the replicas may be unavailable, and at most maxSurge pods beyond the
// replicas may exist, each an absolute number or a percentage of replicas
// (maxSurge rounded up, maxUnavailable down); default 25% each.
type RollingUpdateDeployment struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// DeploymentStatus is the observed state of a Deployment, written by its
// controller.
type DeploymentStatus struct {
	ObservedGeneration  int64                 `json:"observedGeneration,omitempty"`
	Replicas            int32                 `json:"replicas,omitempty"`
	UpdatedReplicas     int32                 `json:"updatedReplicas,omitempty"`
	ReadyReplicas       int32                 `json:"readyReplicas,omitempty"`
	AvailableReplicas   int32                 `json:"availableReplicas,omitempty"`
	UnavailableReplicas int32                 `json:"unavailableReplicas,omitempty"`
	Conditions          []DeploymentCondition `json:"conditions,omitempty"`
	CollisionCount      *int32                `json:"collisionCount,omitempty"`
}

// Deployment condition types and reasons, as Kubernetes'.
const (
	DeploymentAvailable   = "Available"
	DeploymentProgressing = "Progressing"

	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet         = "FoundNewReplicaSet"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewRSAvailable             = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused           = "DeploymentPaused"
	ReasonDeploymentResumed          = "DeploymentResumed"
)

// DeploymentCondition is one condition of a Deployment.
type DeploymentCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastUpdateTime     time.Time       `json:"lastUpdateTime,omitzero"`
	LastTransitionTime time.Time       `json:"lastTransitionTime,omitzero"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// Condition returns the condition of the given type, or nil.
func (s *DeploymentStatus) Condition(typ string) *DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition sets or replaces a condition; LastTransitionTime is kept
// when the status did not change.
func (s *DeploymentStatus) SetCondition(c DeploymentCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			}
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

// Workload defaults, as Kubernetes'.
const (
	DefaultRevisionHistoryLimit    = int32(10)
	DefaultProgressDeadlineSeconds = int32(600)
)

// DefaultMaxSurgeUnavailable is the default of maxSurge and maxUnavailable.
var DefaultMaxSurgeUnavailable = FromString("25%")

func defaultReplicas(r **int32) {
	if *r == nil {
		one := int32(1)
		*r = &one
	}
}

func defaultReplicaSet(rs *ReplicaSet) {
	defaultReplicas(&rs.Spec.Replicas)
	defaultTemplate(&rs.Spec.Template)
}

func defaultTemplate(t *PodTemplateSpec) {
	p := Pod{Spec: t.Spec}
	defaultPod(&p)
	t.Spec = p.Spec
}

func defaultDeployment(d *Deployment) {
	s := &d.Spec
	defaultReplicas(&s.Replicas)
	defaultTemplate(&s.Template)
	if s.Strategy.Type == "" {
		s.Strategy.Type = RollingUpdateDeploymentStrategyType
	}
	if s.Strategy.Type == RollingUpdateDeploymentStrategyType {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxSurge == nil {
			v := DefaultMaxSurgeUnavailable
			ru.MaxSurge = &v
		}
		if ru.MaxUnavailable == nil {
			v := DefaultMaxSurgeUnavailable
			ru.MaxUnavailable = &v
		}
	}
	if s.RevisionHistoryLimit == nil {
		v := DefaultRevisionHistoryLimit
		s.RevisionHistoryLimit = &v
	}
	if s.ProgressDeadlineSeconds == nil {
		v := DefaultProgressDeadlineSeconds
		s.ProgressDeadlineSeconds = &v
	}
}

// ScaledValue resolves v against total: an integer as is, a percentage
// ("25%") of total rounded up or down. It fails on any other string.
func ScaledValue(v *IntOrString, total int32, roundUp bool) (int32, error) {
	if v == nil {
		return 0, nil
	}
	if !v.IsString {
		return v.IntVal, nil
	}
	s, ok := strings.CutSuffix(v.StrVal, "%")
	if !ok {
		return 0, fmt.Errorf("invalid value %q: must be an integer or a percentage", v.StrVal)
	}
	p, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q: must be an integer or a percentage", v.StrVal)
	}
	f := float64(p) * float64(total) / 100
	if roundUp {
		return int32(math.Ceil(f)), nil
	}
	return int32(math.Floor(f)), nil
}

// validateSelectorTemplate checks a workload's selector and template: the
// selector is required, not empty, valid, and selects the template's labels.
func validateSelectorTemplate(e *errs, sel *LabelSelector, t *PodTemplateSpec, p *field.Path) {
	sp := p.Child("selector")
	if sel == nil {
		e.required(sp)
	} else {
		if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
			e.add(sp, "empty selector is invalid for a workload: it would select every pod")
		}
		validateLabels(e, sel.MatchLabels, sp.Child("matchLabels"))
		for i, r := range sel.MatchExpressions {
			rp := sp.Child("matchExpressions").Index(i)
			switch r.Operator {
			case LabelSelectorOpIn, LabelSelectorOpNotIn:
				if len(r.Values) == 0 {
					e.add(rp.Child("values"), "must be specified when operator is In or NotIn")
				}
			case LabelSelectorOpExists, LabelSelectorOpDoesNotExist:
				if len(r.Values) > 0 {
					e.add(rp.Child("values"), "may not be specified when operator is Exists or DoesNotExist")
				}
			default:
				e.unsupported(rp.Child("operator"), r.Operator, LabelSelectorOpIn, LabelSelectorOpNotIn, LabelSelectorOpExists, LabelSelectorOpDoesNotExist)
			}
		}
		if s, err := sel.Selector(); err != nil {
			e.add(sp, "invalid selector: %v", err)
		} else if !s.Matches(labels.Set(t.Labels)) {
			e.add(p.Child("template", "metadata", "labels"), "`selector` does not match template `labels`")
		}
	}
	tp := p.Child("template")
	validateLabels(e, t.Labels, tp.Child("metadata", "labels"))
	validatePodSpec(e, &t.Spec, tp.Child("spec"))
	validatePodAnnotations(e, t.Annotations, &t.Spec, tp.Child("metadata", "annotations"))
	if t.Spec.RestartPolicy != "" && t.Spec.RestartPolicy != RestartPolicyAlways {
		e.unsupported(tp.Child("spec", "restartPolicy"), string(t.Spec.RestartPolicy), string(RestartPolicyAlways))
	}
	if t.Spec.NodeName != "" {
		e.add(tp.Child("spec", "nodeName"), "must be empty in a template: the scheduler binds each pod")
	}
}

func validateReplicas(e *errs, r *int32, p *field.Path) {
	if r != nil && *r < 0 {
		e.add(p, "must be greater than or equal to 0")
	}
}

func validateReplicaSet(e *errs, rs *ReplicaSet) {
	p := field.NewPath("spec")
	validateReplicas(e, rs.Spec.Replicas, p.Child("replicas"))
	if rs.Spec.MinReadySeconds < 0 {
		e.add(p.Child("minReadySeconds"), "must be greater than or equal to 0")
	}
	validateSelectorTemplate(e, rs.Spec.Selector, &rs.Spec.Template, p)
}

// validateIntOrPercent checks v as a non-negative integer or a percentage
// (0-100%), returning whether it is zero.
func validateIntOrPercent(e *errs, v *IntOrString, p *field.Path) (zero bool) {
	if v == nil {
		return false
	}
	if !v.IsString {
		if v.IntVal < 0 {
			e.add(p, "must be greater than or equal to 0")
		}
		return v.IntVal == 0
	}
	s, ok := strings.CutSuffix(v.StrVal, "%")
	n, err := strconv.Atoi(s)
	if !ok || err != nil {
		e.add(p, "invalid value %q: must be an integer or a percentage (e.g. '5%%')", v.StrVal)
		return false
	}
	if n < 0 || n > 100 {
		e.add(p, "invalid value %q: a percentage must be between 0%% and 100%%", v.StrVal)
	}
	return n == 0
}

func validateDeployment(e *errs, d *Deployment) {
	p := field.NewPath("spec")
	s := &d.Spec
	validateReplicas(e, s.Replicas, p.Child("replicas"))
	if s.MinReadySeconds < 0 {
		e.add(p.Child("minReadySeconds"), "must be greater than or equal to 0")
	}
	if s.RevisionHistoryLimit != nil && *s.RevisionHistoryLimit < 0 {
		e.add(p.Child("revisionHistoryLimit"), "must be greater than or equal to 0")
	}
	if s.ProgressDeadlineSeconds != nil {
		if *s.ProgressDeadlineSeconds <= 0 {
			e.add(p.Child("progressDeadlineSeconds"), "must be greater than 0")
		} else if *s.ProgressDeadlineSeconds <= s.MinReadySeconds {
			e.add(p.Child("progressDeadlineSeconds"), "must be greater than minReadySeconds")
		}
	}
	validateSelectorTemplate(e, s.Selector, &s.Template, p)
	sp := p.Child("strategy")
	switch s.Strategy.Type {
	case "", RollingUpdateDeploymentStrategyType:
		if ru := s.Strategy.RollingUpdate; ru != nil {
			rp := sp.Child("rollingUpdate")
			zs := validateIntOrPercent(e, ru.MaxSurge, rp.Child("maxSurge"))
			zu := validateIntOrPercent(e, ru.MaxUnavailable, rp.Child("maxUnavailable"))
			if zs && zu {
				e.add(rp.Child("maxUnavailable"), "may not be 0 when maxSurge is 0")
			}
		}
	case RecreateDeploymentStrategyType:
		if s.Strategy.RollingUpdate != nil {
			e.add(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")
		}
	default:
		e.unsupported(sp.Child("type"), s.Strategy.Type, RollingUpdateDeploymentStrategyType, RecreateDeploymentStrategyType)
	}
}

// validateWorkloadUpdate checks what may not change on a workload: its
// selector (as apps/v1 makes it immutable).
func validateWorkloadUpdate(e *errs, old, new Object) {
	var os, ns *LabelSelector
	switch o := old.(type) {
	case *ReplicaSet:
		os, ns = o.Spec.Selector, new.(*ReplicaSet).Spec.Selector
	case *Deployment:
		os, ns = o.Spec.Selector, new.(*Deployment).Spec.Selector
	case *DaemonSet:
		os, ns = o.Spec.Selector, new.(*DaemonSet).Spec.Selector
	default:
		return
	}
	if !jsonEqual(os, ns) {
		e.add(field.NewPath("spec", "selector"), "field is immutable")
	}
}

// IsControlledBy reports whether obj's controlling ownerReference is owner
// (by uid).
func IsControlledBy(obj Object, owner Object) bool {
	ref := ControllerOf(obj)
	return ref != nil && ref.UID == owner.GetObjectMeta().UID
}

// ControllerOf returns obj's controlling ownerReference (controller: true),
// or nil.
func ControllerOf(obj Object) *OwnerReference {
	refs := obj.GetObjectMeta().OwnerReferences
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// NewControllerRef returns an ownerReference to owner with controller and
// blockOwnerDeletion true.
func NewControllerRef(owner Object) OwnerReference {
	t := true
	k := KindOf(owner)
	m := owner.GetObjectMeta()
	return OwnerReference{APIVersion: k.APIVersions[0], Kind: k.Name, Name: m.Name, UID: m.UID, Controller: &t, BlockOwnerDeletion: &t}
}

// LabelControllerRevisionHash is set by the DaemonSet controller on each
// pod it creates to a hash of the DaemonSet's pod template, so that a
// rolling update tells updated pods from old ones, as Kubernetes'
// controller-revision-hash.
const LabelControllerRevisionHash = "controller-revision-hash"

// DaemonSet runs one pod of its template on every node that matches it
// (the template's nodeSelector, its tolerations against the node's
// taints), including nodes that join later: the way node-level add-ons run.
type DaemonSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       DaemonSetSpec   `json:"spec"`
	Status     DaemonSetStatus `json:"status,omitzero"`
}

// DaemonSetSpec is the desired state of a DaemonSet.
type DaemonSetSpec struct {
	Selector *LabelSelector  `json:"selector"`
	Template PodTemplateSpec `json:"template"`
	// UpdateStrategy says how pods of an old template are replaced.
	UpdateStrategy DaemonSetUpdateStrategy `json:"updateStrategy,omitzero"`
	// MinReadySeconds is how long a pod must be Ready before it counts as
	// available.
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`
	// RevisionHistoryLimit is how many old revisions are kept; default 10.
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
}

// DaemonSet update strategy types.
const (
	RollingUpdateDaemonSetStrategyType = "RollingUpdate"
	OnDeleteDaemonSetStrategyType      = "OnDelete"
)

// DaemonSetUpdateStrategy says how a DaemonSet's pods are replaced when
// its template changes: RollingUpdate (the default) node by node, or
// OnDelete (only when a pod is deleted by someone else).
type DaemonSetUpdateStrategy struct {
	Type          string                  `json:"type,omitempty"`
	RollingUpdate *RollingUpdateDaemonSet `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDaemonSet bounds a rolling update: at most maxUnavailable
// nodes lack an available pod (default 1; a number or a percentage of the
// desired nodes, rounded up), or maxSurge (default 0) nodes may run an
// old and a new pod at once, the old deleted once the new is available.
// Exactly one of them must be non-zero.
type RollingUpdateDaemonSet struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// DaemonSetStatus is the observed state of a DaemonSet, written by its
// controller.
type DaemonSetStatus struct {
	// DesiredNumberScheduled is how many nodes should run the pod.
	DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`
	// CurrentNumberScheduled is how many nodes that should run it do.
	CurrentNumberScheduled int32 `json:"currentNumberScheduled"`
	// NumberMisscheduled is how many nodes run it that should not.
	NumberMisscheduled int32 `json:"numberMisscheduled"`
	// NumberReady is how many nodes that should run it have it Ready.
	NumberReady int32 `json:"numberReady"`
	// NumberAvailable is how many have it available (Ready minReadySeconds).
	NumberAvailable int32 `json:"numberAvailable,omitempty"`
	// NumberUnavailable is DesiredNumberScheduled - NumberAvailable.
	NumberUnavailable int32 `json:"numberUnavailable,omitempty"`
	// UpdatedNumberScheduled is how many nodes run the current template.
	UpdatedNumberScheduled int32 `json:"updatedNumberScheduled,omitempty"`
	ObservedGeneration     int64 `json:"observedGeneration,omitempty"`
}

// DefaultDaemonSetMaxUnavailable is the default maxUnavailable of a
// DaemonSet's rolling update; maxSurge defaults to 0.
var DefaultDaemonSetMaxUnavailable = FromInt(1)

func defaultDaemonSet(ds *DaemonSet) {
	s := &ds.Spec
	// The daemon tolerations first, so that the pod defaults add no 300 s
	// not-ready/unreachable toleration that would evict a daemon.
	AddDaemonTolerations(&s.Template.Spec)
	defaultTemplate(&s.Template)
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = RollingUpdateDaemonSetStrategyType
	}
	if s.UpdateStrategy.Type == RollingUpdateDaemonSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{}
		}
		ru := s.UpdateStrategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			v := DefaultDaemonSetMaxUnavailable
			ru.MaxUnavailable = &v
		}
		if ru.MaxSurge == nil {
			v := FromInt(0)
			ru.MaxSurge = &v
		}
	}
	if s.RevisionHistoryLimit == nil {
		v := DefaultRevisionHistoryLimit
		s.RevisionHistoryLimit = &v
	}
}

func validateDaemonSet(e *errs, ds *DaemonSet) {
	p := field.NewPath("spec")
	s := &ds.Spec
	if s.MinReadySeconds < 0 {
		e.add(p.Child("minReadySeconds"), "must be greater than or equal to 0")
	}
	if s.RevisionHistoryLimit != nil && *s.RevisionHistoryLimit < 0 {
		e.add(p.Child("revisionHistoryLimit"), "must be greater than or equal to 0")
	}
	validateSelectorTemplate(e, s.Selector, &s.Template, p)
	sp := p.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case "", RollingUpdateDaemonSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			rp := sp.Child("rollingUpdate")
			zs := validateIntOrPercent(e, ru.MaxSurge, rp.Child("maxSurge"))
			zu := validateIntOrPercent(e, ru.MaxUnavailable, rp.Child("maxUnavailable"))
			// A nil maxUnavailable defaults to 1, a nil maxSurge to 0.
			if (zs || ru.MaxSurge == nil) && zu {
				e.add(rp.Child("maxUnavailable"), "may not be 0 when maxSurge is 0")
			}
			if !zs && ru.MaxSurge != nil && !zu && ru.MaxUnavailable != nil {
				e.add(rp.Child("maxSurge"), "may not be set when maxUnavailable is non-zero")
			}
		}
	case OnDeleteDaemonSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			e.add(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'OnDelete'")
		}
	default:
		e.unsupported(sp.Child("type"), s.UpdateStrategy.Type, RollingUpdateDaemonSetStrategyType, OnDeleteDaemonSetStrategyType)
	}
}

// Taints a DaemonSet's pods tolerate besides not-ready and unreachable, as
// Kubernetes' DaemonSet controller adds: a cordoned node and a node under
// resource pressure still run its daemons.
const (
	TaintNodeUnschedulable  = "node.kubernetes.io/unschedulable"
	TaintNodeMemoryPressure = "node.kubernetes.io/memory-pressure"
	TaintNodeDiskPressure   = "node.kubernetes.io/disk-pressure"
	TaintNodePIDPressure    = "node.kubernetes.io/pid-pressure"
	TaintNodeNetworkUnavail = "node.kubernetes.io/network-unavailable"
)

// AddDaemonTolerations adds to s the tolerations Kubernetes' DaemonSet
// controller gives every daemon pod, each only when s does not tolerate
// that taint yet: not-ready and unreachable (Exists, NoExecute, with no
// tolerationSeconds, so eviction never removes a daemon), and
// unschedulable, memory-, disk- and pid-pressure (NoSchedule), plus
// network-unavailable for a host-network pod.
func AddDaemonTolerations(s *PodSpec) {
	add := func(key string, effect TaintEffect) {
		taint := Taint{Key: key, Effect: effect}
		for i := range s.Tolerations {
			if s.Tolerations[i].ToleratesTaint(&taint) {
				return
			}
		}
		s.Tolerations = append(s.Tolerations, Toleration{Key: key, Operator: TolerationOpExists, Effect: effect})
	}
	add(TaintNodeNotReady, TaintNoExecute)
	add(TaintNodeUnreachable, TaintNoExecute)
	add(TaintNodeDiskPressure, TaintNoSchedule)
	add(TaintNodeMemoryPressure, TaintNoSchedule)
	add(TaintNodePIDPressure, TaintNoSchedule)
	add(TaintNodeUnschedulable, TaintNoSchedule)
	if s.HostNetwork {
		add(TaintNodeNetworkUnavail, TaintNoSchedule)
	}
}
