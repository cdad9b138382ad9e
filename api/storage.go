package api

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// StorageVersion is the apiVersion of StorageClass, as Kubernetes'
// storage.k8s.io/v1.
const StorageVersion = "storage.k8s.io/v1"

// The storage kinds.
var (
	storageClassKind = &Kind{Name: "StorageClass", Plural: "storageclasses", Short: []string{"sc", "storageclass"}, Namespaced: false, APIVersions: []string{StorageVersion, "kyb/v1"}, New: func() Object { return &StorageClass{} }}
	pvKind           = &Kind{Name: "PersistentVolume", Plural: "persistentvolumes", Short: []string{"pv", "persistentvolume"}, Namespaced: false, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &PersistentVolume{} }}
	pvcKind          = &Kind{Name: "PersistentVolumeClaim", Plural: "persistentvolumeclaims", Short: []string{"pvc", "persistentvolumeclaim"}, Namespaced: true, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &PersistentVolumeClaim{} }}
)

// ResourceStorage is the size of a volume (capacity, requests).
const ResourceStorage ResourceName = "storage"

// Storage labels and annotations, as Kubernetes'.
const (
	// AnnotationDefaultStorageClass "true" on a StorageClass makes it the
	// class of claims that name none.
	AnnotationDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"
	// AnnotationSelectedNode is set on a claim of a WaitForFirstConsumer
	// class by the scheduler: the node its first pod was placed on, where
	// the volume is then provisioned.
	AnnotationSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnotationStorageProvisioner is set on a claim by the binder: the
	// provisioner expected to make its volume.
	AnnotationStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	// AnnotationProvisionedBy is set on a provisioned volume: the
	// provisioner that made it (and so deletes it).
	AnnotationProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnotationBoundByController is set on a volume or claim the binder
	// bound (rather than the user).
	AnnotationBoundByController = "pv.kubernetes.io/bound-by-controller"
	// LabelHostname is the node label a local volume's nodeAffinity names.
	LabelHostname = "kubernetes.io/hostname"
	// AnnotationVolumesDir is set on a Node by its agent: the directory
	// its provisioned local volumes live in (<agent data dir>/volumes).
	AnnotationVolumesDir = "kyb.dev/volumes-dir"
)

// The built-in storage class.
const (
	// LocalProvisioner provisions a directory on the node that first uses
	// the claim: <agent data dir>/volumes/<volume name>.
	LocalProvisioner = "kyb.dev/local"
	// NoProvisioner marks a class whose volumes are created by hand.
	NoProvisioner = "kubernetes.io/no-provisioner"
	// LocalStorageClassName is the name of the class made at start.
	LocalStorageClassName = "local"
)

// Reclaim policies of a volume.
const (
	ReclaimRetain = "Retain"
	ReclaimDelete = "Delete"
)

// Volume binding modes of a storage class.
const (
	VolumeBindingImmediate            = "Immediate"
	VolumeBindingWaitForFirstConsumer = "WaitForFirstConsumer"
)

// Access modes of a volume.
const (
	ReadWriteOnce    = "ReadWriteOnce"
	ReadOnlyMany     = "ReadOnlyMany"
	ReadWriteMany    = "ReadWriteMany"
	ReadWriteOncePod = "ReadWriteOncePod"
)

// Phases of a volume.
const (
	VolumePending   = "Pending"
	VolumeAvailable = "Available"
	VolumeBound     = "Bound"
	VolumeReleased  = "Released"
	VolumeFailed    = "Failed"
)

// Phases of a claim.
const (
	ClaimPending = "Pending"
	ClaimBound   = "Bound"
	ClaimLost    = "Lost"
)

// VolumeModeFilesystem is the only volume mode served (Block is refused).
const VolumeModeFilesystem = "Filesystem"

// StorageClass describes a kind of storage: who provisions its volumes,
// what happens to them when their claim goes, and when they are bound.
type StorageClass struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// Provisioner makes the class's volumes: kyb.dev/local (a directory
	// on the node) or kubernetes.io/no-provisioner (volumes made by hand).
	Provisioner string `json:"provisioner"`
	// Parameters are the provisioner's; kyb.dev/local takes none.
	Parameters map[string]string `json:"parameters,omitempty"`
	// ReclaimPolicy of the volumes provisioned: Delete (default) or Retain.
	ReclaimPolicy *string `json:"reclaimPolicy,omitempty"`
	// VolumeBindingMode: Immediate (default) or WaitForFirstConsumer.
	VolumeBindingMode *string `json:"volumeBindingMode,omitempty"`
	// AllowVolumeExpansion true is refused: volumes are not expanded.
	AllowVolumeExpansion *bool `json:"allowVolumeExpansion,omitempty"`
	// MountOptions and AllowedTopologies are refused when set.
	MountOptions      []string         `json:"mountOptions,omitempty"`
	AllowedTopologies []map[string]any `json:"allowedTopologies,omitempty"`
}

// IsDefault reports whether the class carries the default-class annotation.
func (sc *StorageClass) IsDefault() bool {
	return sc.Annotations[AnnotationDefaultStorageClass] == "true"
}

// BindingMode returns the class's volume binding mode (Immediate when unset).
func (sc *StorageClass) BindingMode() string {
	if sc.VolumeBindingMode == nil {
		return VolumeBindingImmediate
	}
	return *sc.VolumeBindingMode
}

// Reclaim returns the class's reclaim policy (Delete when unset).
func (sc *StorageClass) Reclaim() string {
	if sc.ReclaimPolicy == nil {
		return ReclaimDelete
	}
	return *sc.ReclaimPolicy
}

// LocalStorageClass returns the built-in class the control plane creates
// at start: kyb.dev/local, WaitForFirstConsumer, Delete, the default.
func LocalStorageClass() *StorageClass {
	mode, reclaim := VolumeBindingWaitForFirstConsumer, ReclaimDelete
	sc := &StorageClass{
		ObjectMeta:        ObjectMeta{Name: LocalStorageClassName, Annotations: map[string]string{AnnotationDefaultStorageClass: "true"}},
		Provisioner:       LocalProvisioner,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &mode,
	}
	Default(sc)
	return sc
}

// PersistentVolume is a piece of storage: a directory of one node (local,
// hostPath), made by hand or provisioned for a claim.
type PersistentVolume struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PersistentVolumeSpec   `json:"spec"`
	Status     PersistentVolumeStatus `json:"status,omitzero"`
}

// PersistentVolumeSpec is a volume's size, source and binding.
type PersistentVolumeSpec struct {
	// Capacity holds the volume's size (storage).
	Capacity    ResourceList `json:"capacity,omitempty"`
	AccessModes []string     `json:"accessModes,omitempty"`
	// PersistentVolumeReclaimPolicy is Retain (default) or Delete.
	PersistentVolumeReclaimPolicy string `json:"persistentVolumeReclaimPolicy,omitempty"`
	StorageClassName              string `json:"storageClassName,omitempty"`
	// Local is a directory of the node(s) NodeAffinity names (required).
	Local *LocalVolumeSource `json:"local,omitempty"`
	// HostPath is a directory of whichever node runs the pod.
	HostPath *HostPathVolumeSource `json:"hostPath,omitempty"`
	// NodeAffinity limits the nodes that can use the volume.
	NodeAffinity *VolumeNodeAffinity `json:"nodeAffinity,omitempty"`
	// ClaimRef is the claim the volume is bound (or reserved) to.
	ClaimRef *ObjectReference `json:"claimRef,omitempty"`
	// VolumeMode: Filesystem only.
	VolumeMode   *string  `json:"volumeMode,omitempty"`
	MountOptions []string `json:"mountOptions,omitempty"`
}

// LocalVolumeSource is a directory on a node.
type LocalVolumeSource struct {
	Path   string  `json:"path"`
	FSType *string `json:"fsType,omitempty"`
}

// VolumeNodeAffinity names the nodes a volume can be used from.
type VolumeNodeAffinity struct {
	Required *NodeSelector `json:"required,omitempty"`
}

// NodeSelector is a union of terms: a node matches when one term does.
type NodeSelector struct {
	NodeSelectorTerms []NodeSelectorTerm `json:"nodeSelectorTerms"`
}

// NodeSelectorTerm is a conjunction of requirements on a node's labels
// (MatchExpressions) and fields (MatchFields: metadata.name).
type NodeSelectorTerm struct {
	MatchExpressions []NodeSelectorRequirement `json:"matchExpressions,omitempty"`
	MatchFields      []NodeSelectorRequirement `json:"matchFields,omitempty"`
}

// NodeSelectorRequirement is one requirement: Operator In, NotIn, Exists,
// DoesNotExist, Gt or Lt.
type NodeSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

var nodeSelectorOps = []string{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}

// Matches reports whether node matches the selector (a nil or empty
// selector matches nothing, as Kubernetes').
func (s *NodeSelector) Matches(n *Node) bool {
	if s == nil {
		return false
	}
	for _, t := range s.NodeSelectorTerms {
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue
		}
		ok := true
		for _, r := range t.MatchExpressions {
			v, has := n.Labels[r.Key]
			ok = ok && r.matches(v, has)
		}
		for _, r := range t.MatchFields {
			ok = ok && r.Key == "metadata.name" && r.matches(n.Name, true)
		}
		if ok {
			return true
		}
	}
	return false
}

func (r NodeSelectorRequirement) matches(v string, has bool) bool {
	switch r.Operator {
	case "In":
		return has && slices.Contains(r.Values, v)
	case "NotIn":
		return !has || !slices.Contains(r.Values, v)
	case "Exists":
		return has
	case "DoesNotExist":
		return !has
	case "Gt", "Lt":
		if !has || len(r.Values) != 1 {
			return false
		}
		a, err1 := strconv.ParseInt(v, 10, 64)
		b, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == "Gt" {
			return a > b
		}
		return a < b
	}
	return false
}

// PersistentVolumeStatus is a volume's phase, written by the binder.
type PersistentVolumeStatus struct {
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Storage returns the volume's capacity (zero when unset).
func (pv *PersistentVolume) Storage() resource.Quantity {
	return pv.Spec.Capacity[ResourceStorage]
}

// NodeName returns the one node a volume's affinity pins it to
// (kubernetes.io/hostname In [node]), or "".
func (pv *PersistentVolume) NodeName() string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 0 || len(terms[0].MatchExpressions) != 1 {
		return ""
	}
	r := terms[0].MatchExpressions[0]
	if r.Key != LabelHostname || r.Operator != "In" || len(r.Values) != 1 {
		return ""
	}
	return r.Values[0]
}

// HostNodeAffinity returns an affinity to the one node name.
func HostNodeAffinity(name string) *VolumeNodeAffinity {
	return &VolumeNodeAffinity{Required: &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{{
		MatchExpressions: []NodeSelectorRequirement{{Key: LabelHostname, Operator: "In", Values: []string{name}}},
	}}}}
}

// PersistentVolumeClaim is a request for storage by a namespace's pods.
type PersistentVolumeClaim struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PersistentVolumeClaimSpec   `json:"spec"`
	Status     PersistentVolumeClaimStatus `json:"status,omitzero"`
}

// PersistentVolumeClaimSpec is what a claim asks for.
type PersistentVolumeClaimSpec struct {
	AccessModes []string `json:"accessModes,omitempty"`
	// Selector limits the volumes (by label) the claim binds to.
	Selector  *LabelSelector             `json:"selector,omitempty"`
	Resources VolumeResourceRequirements `json:"resources,omitzero"`
	// VolumeName binds the claim to that volume.
	VolumeName string `json:"volumeName,omitempty"`
	// StorageClassName: nil takes the default class (set by the binder,
	// as Kubernetes' retroactive default); "" asks for a volume of no class.
	StorageClassName *string `json:"storageClassName,omitempty"`
	VolumeMode       *string `json:"volumeMode,omitempty"`
	// DataSource and DataSourceRef (cloning, snapshots) are refused.
	DataSource    *TypedObjectReference `json:"dataSource,omitempty"`
	DataSourceRef *TypedObjectReference `json:"dataSourceRef,omitempty"`
}

// TypedObjectReference names an object of a kind (a claim's data source).
type TypedObjectReference struct {
	APIGroup *string `json:"apiGroup,omitempty"`
	Kind     string  `json:"kind"`
	Name     string  `json:"name"`
}

// VolumeResourceRequirements are a claim's requests and limits.
type VolumeResourceRequirements struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// PersistentVolumeClaimStatus is a claim's phase and what it got.
type PersistentVolumeClaimStatus struct {
	Phase       string       `json:"phase,omitempty"`
	AccessModes []string     `json:"accessModes,omitempty"`
	Capacity    ResourceList `json:"capacity,omitempty"`
}

// ClassName returns the claim's storage class name ("" when none or unset).
func (c *PersistentVolumeClaim) ClassName() string {
	if c.Spec.StorageClassName == nil {
		return ""
	}
	return *c.Spec.StorageClassName
}

// Request returns the storage the claim requests.
func (c *PersistentVolumeClaim) Request() resource.Quantity {
	return c.Spec.Resources.Requests[ResourceStorage]
}

// PersistentVolumeClaimVolumeSource is a pod volume backed by a claim of
// the pod's namespace.
type PersistentVolumeClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

func defaultStorageClass(sc *StorageClass) {
	if sc.ReclaimPolicy == nil {
		v := ReclaimDelete
		sc.ReclaimPolicy = &v
	}
	if sc.VolumeBindingMode == nil {
		v := VolumeBindingImmediate
		sc.VolumeBindingMode = &v
	}
}

func defaultPV(pv *PersistentVolume) {
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = ReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		v := VolumeModeFilesystem
		pv.Spec.VolumeMode = &v
	}
	if pv.Status.Phase == "" {
		pv.Status.Phase = VolumePending
	}
}

func defaultPVC(c *PersistentVolumeClaim) {
	if c.Spec.VolumeMode == nil {
		v := VolumeModeFilesystem
		c.Spec.VolumeMode = &v
	}
	if c.Status.Phase == "" {
		c.Status.Phase = ClaimPending
	}
}

var (
	accessModes       = []string{ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod}
	reclaimPolicies   = []string{ReclaimRetain, ReclaimDelete}
	bindingModes      = []string{VolumeBindingImmediate, VolumeBindingWaitForFirstConsumer}
	volumePhases      = []string{"", VolumePending, VolumeAvailable, VolumeBound, VolumeReleased, VolumeFailed}
	claimPhases       = []string{"", ClaimPending, ClaimBound, ClaimLost}
	notImplementedMsg = "not supported by kybernetes: it would change what the volume does, so it is refused rather than ignored"
)

func validateStorageClass(e *errs, sc *StorageClass) {
	switch {
	case sc.Provisioner == "":
		e.required(field.NewPath("provisioner"))
	case len(sc.Provisioner) > 63*4:
		e.add(field.NewPath("provisioner"), "must be no more than %d characters", 63*4)
	default:
		e.addAll(field.NewPath("provisioner"), validation.IsQualifiedName(strings.ToLower(sc.Provisioner)))
	}
	if sc.Provisioner == LocalProvisioner {
		for _, k := range sortedKeys(sc.Parameters) {
			e.add(field.NewPath("parameters").Key(k), "unknown parameter: %s takes none", LocalProvisioner)
		}
		// A local volume is made on the node of its first pod: there is no
		// node to make it on before.
		if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != VolumeBindingWaitForFirstConsumer {
			e.add(field.NewPath("volumeBindingMode"), "must be %s with provisioner %s (a local volume is made on the node of the claim's first pod)", VolumeBindingWaitForFirstConsumer, LocalProvisioner)
		}
	}
	if sc.ReclaimPolicy != nil && !slices.Contains(reclaimPolicies, *sc.ReclaimPolicy) {
		e.unsupported(field.NewPath("reclaimPolicy"), *sc.ReclaimPolicy, reclaimPolicies...)
	}
	if sc.VolumeBindingMode != nil && !slices.Contains(bindingModes, *sc.VolumeBindingMode) {
		e.unsupported(field.NewPath("volumeBindingMode"), *sc.VolumeBindingMode, bindingModes...)
	}
	if sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion {
		e.add(field.NewPath("allowVolumeExpansion"), "%s (volumes are not expanded; a claim's request is immutable)", notImplementedMsg)
	}
	if len(sc.MountOptions) > 0 {
		e.add(field.NewPath("mountOptions"), "%s", notImplementedMsg)
	}
	if len(sc.AllowedTopologies) > 0 {
		e.add(field.NewPath("allowedTopologies"), "%s", notImplementedMsg)
	}
	if v, ok := sc.Annotations[AnnotationDefaultStorageClass]; ok && v != "true" && v != "false" {
		e.unsupported(field.NewPath("metadata", "annotations").Key(AnnotationDefaultStorageClass), v, "true", "false")
	}
}

// validateAccessModes checks a required list of access modes.
func validateAccessModes(e *errs, modes []string, p *field.Path) {
	if len(modes) == 0 {
		e.required(p)
	}
	for i, m := range modes {
		switch {
		case m == ReadWriteOncePod:
			// It would hold every other pod of the claim back: not
			// implemented, so refused rather than ignored.
			e.add(p.Index(i), "unsupported value %q: not implemented by kybernetes; supported values: %q, %q, %q", m, ReadWriteOnce, ReadOnlyMany, ReadWriteMany)
		case !slices.Contains(accessModes, m):
			e.unsupported(p.Index(i), m, accessModes[:3]...)
		}
	}
}

// validatePositiveStorage checks a required, positive storage quantity.
func validatePositiveStorage(e *errs, l ResourceList, p *field.Path) {
	q, ok := l[ResourceStorage]
	switch {
	case !ok:
		e.required(p.Key(string(ResourceStorage)))
	case q.Sign() <= 0:
		e.add(p.Key(string(ResourceStorage)), "must be greater than zero (got %s)", q.String())
	}
	for _, k := range sortedKeys(r2s(l)) {
		if k != string(ResourceStorage) {
			e.unsupported(p.Key(k), k, string(ResourceStorage))
		}
	}
}

// validateVolumePath checks a required absolute, clean host path.
func validateVolumePath(e *errs, p string, fp *field.Path) {
	switch {
	case p == "":
		e.required(fp)
	case len(p) > 4096:
		e.add(fp, "must be no more than 4096 characters")
	case !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsRune(p, 0) || p == "/":
		e.add(fp, "must be an absolute, clean path other than / (no '..', '.', '//' or trailing '/')")
	}
}

func validateVolumeMode(e *errs, m *string, p *field.Path) {
	if m != nil && *m != VolumeModeFilesystem {
		e.add(p, "unsupported value %q: only %q is supported (block volumes are refused)", *m, VolumeModeFilesystem)
	}
}

func validateNodeSelector(e *errs, s *NodeSelector, p *field.Path) {
	tp := p.Child("nodeSelectorTerms")
	if len(s.NodeSelectorTerms) == 0 {
		e.required(tp)
	}
	for i, t := range s.NodeSelectorTerms {
		ip := tp.Index(i)
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			e.add(ip, "must have at least one of matchExpressions and matchFields")
		}
		for j, r := range t.MatchExpressions {
			rp := ip.Child("matchExpressions").Index(j)
			e.addAll(rp.Child("key"), validation.IsQualifiedName(r.Key))
			validateNodeSelectorRequirement(e, r, rp)
		}
		for j, r := range t.MatchFields {
			rp := ip.Child("matchFields").Index(j)
			if r.Key != "metadata.name" {
				e.unsupported(rp.Child("key"), r.Key, "metadata.name")
			}
			if r.Operator != "In" && r.Operator != "NotIn" {
				e.unsupported(rp.Child("operator"), r.Operator, "In", "NotIn")
			} else {
				validateNodeSelectorRequirement(e, r, rp)
			}
		}
	}
}

func validateNodeSelectorRequirement(e *errs, r NodeSelectorRequirement, p *field.Path) {
	switch r.Operator {
	case "In", "NotIn":
		if len(r.Values) == 0 {
			e.add(p.Child("values"), "must be specified when operator is In or NotIn")
		}
	case "Exists", "DoesNotExist":
		if len(r.Values) > 0 {
			e.add(p.Child("values"), "may not be specified when operator is Exists or DoesNotExist")
		}
	case "Gt", "Lt":
		if len(r.Values) != 1 {
			e.add(p.Child("values"), "must be a single integer when operator is Gt or Lt")
		} else if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			e.add(p.Child("values").Index(0), "must be an integer (got %q)", r.Values[0])
		}
	default:
		e.unsupported(p.Child("operator"), r.Operator, nodeSelectorOps...)
	}
	for i, v := range r.Values {
		e.labelValue(p.Child("values").Index(i), v)
	}
}

func validatePV(e *errs, pv *PersistentVolume) {
	sp := field.NewPath("spec")
	s := &pv.Spec
	validatePositiveStorage(e, s.Capacity, sp.Child("capacity"))
	validateAccessModes(e, s.AccessModes, sp.Child("accessModes"))
	switch s.PersistentVolumeReclaimPolicy {
	case "", ReclaimRetain, ReclaimDelete:
	case "Recycle":
		e.add(sp.Child("persistentVolumeReclaimPolicy"), "unsupported value \"Recycle\": deprecated in Kubernetes and not implemented; supported values: \"Retain\", \"Delete\"")
	default:
		e.unsupported(sp.Child("persistentVolumeReclaimPolicy"), s.PersistentVolumeReclaimPolicy, reclaimPolicies...)
	}
	if s.StorageClassName != "" {
		e.addAll(sp.Child("storageClassName"), validation.IsDNS1123Subdomain(s.StorageClassName))
	}
	n := 0
	if s.Local != nil {
		n++
		validateVolumePath(e, s.Local.Path, sp.Child("local", "path"))
		if s.Local.FSType != nil && *s.Local.FSType != "" {
			e.add(sp.Child("local", "fsType"), "%s (a local volume is a directory)", notImplementedMsg)
		}
		if s.NodeAffinity == nil || s.NodeAffinity.Required == nil {
			e.add(sp.Child("nodeAffinity"), "required: a local volume must name the node(s) it is on")
		}
	}
	if s.HostPath != nil {
		n++
		validateVolumePath(e, s.HostPath.Path, sp.Child("hostPath", "path"))
		if !slices.Contains(hostPathTypes, s.HostPath.Type) {
			e.unsupported(sp.Child("hostPath", "type"), s.HostPath.Type, hostPathTypes...)
		}
	}
	switch n {
	case 0:
		e.add(sp, "must specify exactly one volume source (supported: local, hostPath)")
	case 1:
	default:
		e.add(sp, "may not specify more than one volume source")
	}
	if s.NodeAffinity != nil {
		if s.NodeAffinity.Required == nil {
			e.required(sp.Child("nodeAffinity", "required"))
		} else {
			validateNodeSelector(e, s.NodeAffinity.Required, sp.Child("nodeAffinity", "required"))
		}
	}
	if r := s.ClaimRef; r != nil {
		rp := sp.Child("claimRef")
		if r.Name == "" {
			e.required(rp.Child("name"))
		} else {
			e.addAll(rp.Child("name"), validation.IsDNS1123Subdomain(r.Name))
		}
		if r.Namespace == "" {
			e.required(rp.Child("namespace"))
		} else {
			e.addAll(rp.Child("namespace"), validation.IsDNS1123Label(r.Namespace))
		}
		if r.Kind != "" && r.Kind != pvcKind.Name {
			e.unsupported(rp.Child("kind"), r.Kind, pvcKind.Name)
		}
	}
	validateVolumeMode(e, s.VolumeMode, sp.Child("volumeMode"))
	if len(s.MountOptions) > 0 {
		e.add(sp.Child("mountOptions"), "%s", notImplementedMsg)
	}
	if !slices.Contains(volumePhases, pv.Status.Phase) {
		e.unsupported(field.NewPath("status", "phase"), pv.Status.Phase, volumePhases[1:]...)
	}
}

func validatePVC(e *errs, c *PersistentVolumeClaim) {
	sp := field.NewPath("spec")
	s := &c.Spec
	validateAccessModes(e, s.AccessModes, sp.Child("accessModes"))
	validatePositiveStorage(e, s.Resources.Requests, sp.Child("resources", "requests"))
	for _, k := range sortedKeys(r2s(s.Resources.Limits)) {
		lp := sp.Child("resources", "limits").Key(k)
		if k != string(ResourceStorage) {
			e.unsupported(lp, k, string(ResourceStorage))
			continue
		}
		l, r := s.Resources.Limits[ResourceStorage], s.Resources.Requests[ResourceStorage]
		if l.Cmp(r) < 0 {
			e.add(lp, "must be greater than or equal to the request (%s < %s)", l.String(), r.String())
		}
	}
	if s.StorageClassName != nil && *s.StorageClassName != "" {
		e.addAll(sp.Child("storageClassName"), validation.IsDNS1123Subdomain(*s.StorageClassName))
	}
	if s.VolumeName != "" {
		e.addAll(sp.Child("volumeName"), validation.IsDNS1123Subdomain(s.VolumeName))
	}
	if s.Selector != nil {
		validateLabelSelector(e, s.Selector, sp.Child("selector"))
	}
	validateVolumeMode(e, s.VolumeMode, sp.Child("volumeMode"))
	if s.DataSource != nil {
		e.add(sp.Child("dataSource"), "%s (no cloning or snapshots)", notImplementedMsg)
	}
	if s.DataSourceRef != nil {
		e.add(sp.Child("dataSourceRef"), "%s (no cloning or snapshots)", notImplementedMsg)
	}
	if !slices.Contains(claimPhases, c.Status.Phase) {
		e.unsupported(field.NewPath("status", "phase"), c.Status.Phase, claimPhases[1:]...)
	}
}

// validateLabelSelector checks a selector's labels and operators.
func validateLabelSelector(e *errs, sel *LabelSelector, sp *field.Path) {
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
	if _, err := sel.Selector(); err != nil {
		e.add(sp, "invalid selector: %v", err)
	}
}

// validateStorageUpdate checks what may not change on the storage kinds,
// as Kubernetes: a class's provisioner, parameters, reclaim policy and
// binding mode; a volume's source, volume mode and node affinity; a
// claim's spec, except that volumeName may be set once (the request is
// immutable: volumes are not expanded).
func validateStorageUpdate(e *errs, old, new Object) {
	immutable := func(p *field.Path, a, b any) {
		if !jsonEqual(a, b) {
			e.add(p, "field is immutable")
		}
	}
	switch o := old.(type) {
	case *StorageClass:
		n := new.(*StorageClass)
		immutable(field.NewPath("provisioner"), o.Provisioner, n.Provisioner)
		immutable(field.NewPath("parameters"), o.Parameters, n.Parameters)
		immutable(field.NewPath("reclaimPolicy"), o.ReclaimPolicy, n.ReclaimPolicy)
		immutable(field.NewPath("volumeBindingMode"), o.VolumeBindingMode, n.VolumeBindingMode)
	case *PersistentVolume:
		n := new.(*PersistentVolume)
		sp := field.NewPath("spec")
		immutable(sp.Child("local"), o.Spec.Local, n.Spec.Local)
		immutable(sp.Child("hostPath"), o.Spec.HostPath, n.Spec.HostPath)
		immutable(sp.Child("volumeMode"), o.Spec.VolumeMode, n.Spec.VolumeMode)
		if o.Spec.NodeAffinity != nil {
			immutable(sp.Child("nodeAffinity"), o.Spec.NodeAffinity, n.Spec.NodeAffinity)
		}
	case *PersistentVolumeClaim:
		n := new.(*PersistentVolumeClaim)
		os, ns := o.Spec, n.Spec
		if os.VolumeName == "" {
			os.VolumeName = ns.VolumeName
		}
		if os.StorageClassName == nil {
			// As Kubernetes: a claim with no class may be given one.
			os.StorageClassName = ns.StorageClassName
		}
		if !jsonEqual(os, ns) {
			e.add(field.NewPath("spec"), "field is immutable after creation, except volumeName and storageClassName when unset (volumes are not expanded)")
		}
	}
}

// PVCVolumeName returns the claim a pod volume names, or "".
func (v *Volume) PVCVolumeName() string {
	if v.PersistentVolumeClaim == nil {
		return ""
	}
	return v.PersistentVolumeClaim.ClaimName
}

func validatePVCVolumeSource(e *errs, s *PersistentVolumeClaimVolumeSource, p *field.Path) {
	cp := p.Child("persistentVolumeClaim", "claimName")
	if s.ClaimName == "" {
		e.required(cp)
		return
	}
	if len(s.ClaimName) > 253 {
		e.add(cp, "must be no more than 253 characters (got %d)", len(s.ClaimName))
		return
	}
	e.addAll(cp, validation.IsDNS1123Subdomain(s.ClaimName))
}

// MatchesClaim reports whether volume pv can serve claim c by size,
// access modes, class, mode and the claim's selector (not by binding: see
// the binder). It returns why not.
func (pv *PersistentVolume) MatchesClaim(c *PersistentVolumeClaim) (bool, string) {
	if pv.Spec.StorageClassName != c.ClassName() {
		return false, fmt.Sprintf("storage class %q, claim wants %q", pv.Spec.StorageClassName, c.ClassName())
	}
	cap, req := pv.Storage(), c.Request()
	if cap.Cmp(req) < 0 {
		return false, fmt.Sprintf("capacity %s is less than the %s requested", cap.String(), req.String())
	}
	for _, m := range c.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return false, fmt.Sprintf("no access mode %s", m)
		}
	}
	if c.Spec.Selector != nil {
		sel, err := c.Spec.Selector.Selector()
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false, "labels do not match the claim's selector"
		}
	}
	return true, ""
}

// Node and agent verbs of persistent volumes.
const (
	// NodeVerbVolume: body VolumeRequest; reply the PersistentVolume bound
	// to the claim. 403 unless the pod is bound to the node and names the
	// claim; 409 while the claim is not bound yet.
	NodeVerbVolume = "volume"
	// NodeVerbVolumeDeleted: body VolumeDeleted; reply Ack. The agent
	// removed the directory of a released volume of policy Delete that the
	// local provisioner made for it; the apiserver removes the volume.
	NodeVerbVolumeDeleted = "volumedeleted"
	// AgentVerbVolumeDelete: published PersistentVolume (one the local
	// provisioner made for the node, released, policy Delete); the agent
	// removes its directory and answers with NodeVerbVolumeDeleted.
	AgentVerbVolumeDelete = "volumedelete"
)

// VolumeDeleted says a volume's directory is gone from the node.
type VolumeDeleted struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// VolumeRequest asks for the volume of a pod's claim.
type VolumeRequest struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	UID       string `json:"uid"`
	Claim     string `json:"claim"`
}
