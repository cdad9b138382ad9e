package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var statefulSetKind = &Kind{Name: "StatefulSet", Plural: "statefulsets", Short: []string{"sts", "statefulset"}, Namespaced: true, APIVersions: []string{AppsVersion, "kyb/v1"}, New: func() Object { return &StatefulSet{} }}

// Labels the StatefulSet controller sets on its pods, as Kubernetes'.
const (
	// LabelStatefulSetPodName is the pod's own name (for a Service that
	// selects one pod of a set).
	LabelStatefulSetPodName = "statefulset.kubernetes.io/pod-name"
	// LabelPodIndex is the pod's ordinal.
	LabelPodIndex = "apps.kubernetes.io/pod-index"
)

// StatefulSet pod management policies.
const (
	OrderedReadyPodManagement = "OrderedReady"
	ParallelPodManagement     = "Parallel"
)

// StatefulSet update strategy types.
const (
	RollingUpdateStatefulSetStrategyType = "RollingUpdate"
	OnDeleteStatefulSetStrategyType      = "OnDelete"
)

// PVC retention policies of a StatefulSet.
const (
	RetainPVCRetentionPolicy = "Retain"
	DeletePVCRetentionPolicy = "Delete"
)

// StatefulSet runs pods with stable identities: names <name>-0..N-1, each
// with its own claims made from volumeClaimTemplates, started in order and
// stopped in reverse (OrderedReady) or all at once (Parallel): the way
// users run databases.
type StatefulSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       StatefulSetSpec   `json:"spec"`
	Status     StatefulSetStatus `json:"status,omitzero"`
}

// StatefulSetSpec is the desired state of a StatefulSet.
type StatefulSetSpec struct {
	// Replicas is the number of pods wanted; default 1.
	Replicas *int32          `json:"replicas,omitempty"`
	Selector *LabelSelector  `json:"selector"`
	Template PodTemplateSpec `json:"template"`
	// VolumeClaimTemplates make one claim per pod and template,
	// <template>-<set>-<ordinal>, mounted as the volume of the template's
	// name.
	VolumeClaimTemplates []PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`
	// ServiceName is the headless Service that gives the pods their DNS
	// names (<pod>.<serviceName>.<namespace>.svc.cluster.local): each pod's
	// hostname is its name and its subdomain the service name.
	ServiceName string `json:"serviceName,omitempty"`
	// PodManagementPolicy is OrderedReady (default) or Parallel.
	PodManagementPolicy string                    `json:"podManagementPolicy,omitempty"`
	UpdateStrategy      StatefulSetUpdateStrategy `json:"updateStrategy,omitzero"`
	// RevisionHistoryLimit is how many old revisions are kept; default 10.
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
	// MinReadySeconds is how long a pod must be Ready before it counts as
	// available.
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`
	// PersistentVolumeClaimRetentionPolicy says whether the claims go with
	// the set (whenDeleted) or with a scaled-down pod (whenScaled); Retain
	// by default.
	PersistentVolumeClaimRetentionPolicy *StatefulSetPersistentVolumeClaimRetentionPolicy `json:"persistentVolumeClaimRetentionPolicy,omitempty"`
	// Ordinals sets the first ordinal (default 0).
	Ordinals *StatefulSetOrdinals `json:"ordinals,omitempty"`
}

// StatefulSetOrdinals sets the ordinals of a StatefulSet's pods.
type StatefulSetOrdinals struct {
	Start int32 `json:"start,omitempty"`
}

// StatefulSetPersistentVolumeClaimRetentionPolicy says what happens to the
// claims of the volumeClaimTemplates: Retain (default) or Delete.
type StatefulSetPersistentVolumeClaimRetentionPolicy struct {
	WhenDeleted string `json:"whenDeleted,omitempty"`
	WhenScaled  string `json:"whenScaled,omitempty"`
}

// StatefulSetUpdateStrategy says how pods of an old template are replaced:
// RollingUpdate (default; from the highest ordinal down to partition) or
// OnDelete (only when a pod is deleted by someone else).
type StatefulSetUpdateStrategy struct {
	Type          string                            `json:"type,omitempty"`
	RollingUpdate *RollingUpdateStatefulSetStrategy `json:"rollingUpdate,omitempty"`
}

// RollingUpdateStatefulSetStrategy bounds a rolling update: pods with an
// ordinal below Partition keep the old template. MaxUnavailable other than
// 1 is refused (it is alpha in Kubernetes).
type RollingUpdateStatefulSetStrategy struct {
	Partition      *int32       `json:"partition,omitempty"`
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
}

// StatefulSetStatus is the observed state of a StatefulSet, written by
// its controller.
type StatefulSetStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Replicas           int32  `json:"replicas"`
	ReadyReplicas      int32  `json:"readyReplicas,omitempty"`
	CurrentReplicas    int32  `json:"currentReplicas,omitempty"`
	UpdatedReplicas    int32  `json:"updatedReplicas,omitempty"`
	AvailableReplicas  int32  `json:"availableReplicas,omitempty"`
	CurrentRevision    string `json:"currentRevision,omitempty"`
	UpdateRevision     string `json:"updateRevision,omitempty"`
	CollisionCount     *int32 `json:"collisionCount,omitempty"`
}

// StartOrdinal returns the set's first ordinal.
func (s *StatefulSet) StartOrdinal() int32 {
	if s.Spec.Ordinals == nil {
		return 0
	}
	return s.Spec.Ordinals.Start
}

// PodName returns the name of the set's pod of the ordinal.
func (s *StatefulSet) PodName(ordinal int32) string {
	return s.Name + "-" + strconv.Itoa(int(ordinal))
}

// ClaimName returns the name of the claim of template tmpl for the pod of
// the ordinal: <template>-<set>-<ordinal>.
func (s *StatefulSet) ClaimName(tmpl string, ordinal int32) string {
	return tmpl + "-" + s.PodName(ordinal)
}

// Partition returns the rolling update's partition (0 when unset).
func (s *StatefulSet) Partition() int32 {
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		return *ru.Partition
	}
	return 0
}

// RetentionWhenScaled and RetentionWhenDeleted return the claim retention
// policy (Retain when unset).
func (s *StatefulSet) RetentionWhenScaled() string {
	if p := s.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && p.WhenScaled != "" {
		return p.WhenScaled
	}
	return RetainPVCRetentionPolicy
}

// RetentionWhenDeleted: see RetentionWhenScaled.
func (s *StatefulSet) RetentionWhenDeleted() string {
	if p := s.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && p.WhenDeleted != "" {
		return p.WhenDeleted
	}
	return RetainPVCRetentionPolicy
}

func defaultStatefulSet(s *StatefulSet) {
	sp := &s.Spec
	defaultReplicas(&sp.Replicas)
	defaultTemplate(&sp.Template)
	if sp.PodManagementPolicy == "" {
		sp.PodManagementPolicy = OrderedReadyPodManagement
	}
	if sp.UpdateStrategy.Type == "" {
		sp.UpdateStrategy.Type = RollingUpdateStatefulSetStrategyType
	}
	if sp.UpdateStrategy.Type == RollingUpdateStatefulSetStrategyType {
		if sp.UpdateStrategy.RollingUpdate == nil {
			sp.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{}
		}
		if sp.UpdateStrategy.RollingUpdate.Partition == nil {
			var zero int32
			sp.UpdateStrategy.RollingUpdate.Partition = &zero
		}
	}
	if sp.RevisionHistoryLimit == nil {
		v := DefaultRevisionHistoryLimit
		sp.RevisionHistoryLimit = &v
	}
	if sp.PersistentVolumeClaimRetentionPolicy == nil {
		sp.PersistentVolumeClaimRetentionPolicy = &StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	rp := sp.PersistentVolumeClaimRetentionPolicy
	if rp.WhenDeleted == "" {
		rp.WhenDeleted = RetainPVCRetentionPolicy
	}
	if rp.WhenScaled == "" {
		rp.WhenScaled = RetainPVCRetentionPolicy
	}
	for i := range sp.VolumeClaimTemplates {
		defaultPVC(&sp.VolumeClaimTemplates[i])
		sp.VolumeClaimTemplates[i].Status = PersistentVolumeClaimStatus{}
	}
}

var retentionPolicies = []string{RetainPVCRetentionPolicy, DeletePVCRetentionPolicy}

func validateStatefulSet(e *errs, s *StatefulSet) {
	p := field.NewPath("spec")
	sp := &s.Spec
	validateReplicas(e, sp.Replicas, p.Child("replicas"))
	if sp.MinReadySeconds < 0 {
		e.add(p.Child("minReadySeconds"), "must be greater than or equal to 0")
	}
	if sp.RevisionHistoryLimit != nil && *sp.RevisionHistoryLimit < 0 {
		e.add(p.Child("revisionHistoryLimit"), "must be greater than or equal to 0")
	}
	if sp.Ordinals != nil && sp.Ordinals.Start < 0 {
		e.add(p.Child("ordinals", "start"), "must be greater than or equal to 0")
	}
	// Every pod name <name>-<ordinal> must be a DNS-1123 label.
	if s.Name != "" && sp.Replicas != nil && *sp.Replicas > 0 {
		last := s.PodName(s.StartOrdinal() + *sp.Replicas - 1)
		if len(last) > validation.DNS1123LabelMaxLength {
			e.add(field.NewPath("metadata", "name"), "too long: the pod name %q would be longer than %d characters", last, validation.DNS1123LabelMaxLength)
		}
	}
	if sp.ServiceName != "" {
		e.addAll(p.Child("serviceName"), validation.IsDNS1123Label(sp.ServiceName))
	}
	switch sp.PodManagementPolicy {
	case "", OrderedReadyPodManagement, ParallelPodManagement:
	default:
		e.unsupported(p.Child("podManagementPolicy"), sp.PodManagementPolicy, OrderedReadyPodManagement, ParallelPodManagement)
	}
	up := p.Child("updateStrategy")
	switch sp.UpdateStrategy.Type {
	case "", RollingUpdateStatefulSetStrategyType:
		if ru := sp.UpdateStrategy.RollingUpdate; ru != nil {
			if ru.Partition != nil && *ru.Partition < 0 {
				e.add(up.Child("rollingUpdate", "partition"), "must be greater than or equal to 0")
			}
			if m := ru.MaxUnavailable; m != nil && (m.IsString || m.IntVal != 1) {
				e.add(up.Child("rollingUpdate", "maxUnavailable"), "%s (only 1, one pod at a time, is implemented)", notImplementedMsg)
			}
		}
	case OnDeleteStatefulSetStrategyType:
		if sp.UpdateStrategy.RollingUpdate != nil {
			e.add(up.Child("rollingUpdate"), "may not be specified when strategy `type` is 'OnDelete'")
		}
	default:
		e.unsupported(up.Child("type"), sp.UpdateStrategy.Type, RollingUpdateStatefulSetStrategyType, OnDeleteStatefulSetStrategyType)
	}
	if rp := sp.PersistentVolumeClaimRetentionPolicy; rp != nil {
		pp := p.Child("persistentVolumeClaimRetentionPolicy")
		if rp.WhenDeleted != "" && !slices.Contains(retentionPolicies, rp.WhenDeleted) {
			e.unsupported(pp.Child("whenDeleted"), rp.WhenDeleted, retentionPolicies...)
		}
		if rp.WhenScaled != "" && !slices.Contains(retentionPolicies, rp.WhenScaled) {
			e.unsupported(pp.Child("whenScaled"), rp.WhenScaled, retentionPolicies...)
		}
	}
	// The template is checked as its pods will be: with a volume per claim
	// template (which its containers may mount).
	t := sp.Template
	t.Spec.Volumes = slices.Clone(t.Spec.Volumes)
	for _, ct := range sp.VolumeClaimTemplates {
		if ct.Name != "" && !slices.ContainsFunc(t.Spec.Volumes, func(v Volume) bool { return v.Name == ct.Name }) {
			t.Spec.Volumes = append(t.Spec.Volumes, Volume{Name: ct.Name, PersistentVolumeClaim: &PersistentVolumeClaimVolumeSource{ClaimName: ct.Name}})
		}
	}
	validateSelectorTemplate(e, sp.Selector, &t, p)
	// Claim templates: each a valid claim spec, named as a volume (the
	// template's volumes may not use the name), its claims' names valid.
	names := map[string]bool{}
	for _, v := range sp.Template.Spec.Volumes {
		names[v.Name] = true
	}
	seen := map[string]bool{}
	for i := range sp.VolumeClaimTemplates {
		t := &sp.VolumeClaimTemplates[i]
		tp := p.Child("volumeClaimTemplates").Index(i)
		validateUniqueName(e, t.Name, tp.Child("metadata", "name"), seen)
		if names[t.Name] {
			e.add(tp.Child("metadata", "name"), "duplicate value %q: spec.template.spec.volumes already has a volume of that name", t.Name)
		}
		if t.Name != "" && s.Name != "" && sp.Replicas != nil {
			claim := s.ClaimName(t.Name, s.StartOrdinal()+max(*sp.Replicas, 1)-1)
			if len(claim) > validation.DNS1123SubdomainMaxLength {
				e.add(tp.Child("metadata", "name"), "too long: the claim name %q would be longer than %d characters", claim, validation.DNS1123SubdomainMaxLength)
			}
		}
		var ce errs
		validatePVC(&ce, t)
		for _, c := range ce {
			e.add(field.NewPath(tp.String()+"."+c.Field), "%s", c.Message)
		}
	}
}

// validateStatefulSetUpdate checks what may not change, as Kubernetes:
// only replicas, template, updateStrategy, minReadySeconds, ordinals,
// revisionHistoryLimit and persistentVolumeClaimRetentionPolicy may.
func validateStatefulSetUpdate(e *errs, old, new *StatefulSet) {
	o := old.Spec
	n := new.Spec
	o.Replicas, o.Template, o.UpdateStrategy, o.MinReadySeconds = n.Replicas, n.Template, n.UpdateStrategy, n.MinReadySeconds
	o.Ordinals, o.RevisionHistoryLimit, o.PersistentVolumeClaimRetentionPolicy = n.Ordinals, n.RevisionHistoryLimit, n.PersistentVolumeClaimRetentionPolicy
	if !jsonEqual(o, n) {
		e.add(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
	}
}

var controllerRevisionKind = &Kind{Name: "ControllerRevision", Plural: "controllerrevisions", Short: []string{"controllerrevision"}, Namespaced: true, APIVersions: []string{AppsVersion, "kyb/v1"}, New: func() Object { return &ControllerRevision{} }}

// ControllerRevision is an immutable snapshot of a workload's pod template
// at one revision, as Kubernetes' apps/v1 ControllerRevision: the
// StatefulSet controller keeps one per revision of a set's template (named
// as the revision, owned by the set), so a pod of the current revision can
// be made again while a rollout holds below a partition.
type ControllerRevision struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// Data is the snapshot: for a StatefulSet, {"spec":{"template":...}}.
	Data json.RawMessage `json:"data,omitempty"`
	// Revision is the revision number, 1 for the first.
	Revision int64 `json:"revision"`
}

func validateControllerRevision(e *errs, r *ControllerRevision) {
	if r.Revision < 0 {
		e.add(field.NewPath("revision"), "must be greater than or equal to 0")
	}
	if len(r.Data) > 0 && !json.Valid(r.Data) {
		e.add(field.NewPath("data"), "must be a JSON document")
	}
}

// validateControllerRevisionUpdate: data is immutable, as Kubernetes'.
func validateControllerRevisionUpdate(e *errs, old, new *ControllerRevision) {
	if !bytes.Equal(old.Data, new.Data) {
		e.add(field.NewPath("data"), "field is immutable")
	}
}
