package scheduler

import (
	"context"
	"fmt"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Reasons for pods whose persistent volume claims hold them back, as
// Kubernetes' VolumeBinding plugin words them.
const (
	// ReasonVolumeNodeAffinityConflict: the node cannot use a volume the
	// pod's claim is bound to (the volume's nodeAffinity), or the claim's
	// volume is being made for another node (its selected-node).
	ReasonVolumeNodeAffinityConflict = "node(s) had volume node affinity conflict"
	// ReasonVolumeBindConflict: no free volume of the claim's class can be
	// used from the node, and the class provisions none.
	ReasonVolumeBindConflict = "node(s) didn't find available persistent volumes to bind"
	// ReasonUnboundImmediateClaims: a claim of an Immediate class (or of
	// no class) is not bound yet; the pod waits for the binder.
	ReasonUnboundImmediateClaims = "pod has unbound immediate PersistentVolumeClaims"
)

// ClaimNotFound is the reason for a pod whose claim does not exist.
func ClaimNotFound(name string) string {
	return fmt.Sprintf("persistentvolumeclaim %q not found", name)
}

const (
	failVolumeAffinity uint16 = failMemory << (1 + iota)
	failVolumeBind
)

// ClaimSelector records, on a claim of a WaitForFirstConsumer class, the
// node the scheduler chose for its first pod (the annotation
// volume.kubernetes.io/selected-node), so the volume is provisioned
// there. A Binder that implements it is called before Bind for every such
// claim of the pod; StoreBinder does.
type ClaimSelector interface {
	SelectNode(ctx context.Context, namespace, claim, node string) error
}

// volumes is the scheduler's view of claims, volumes and classes, fed by
// the same event loop as pods and nodes (owned by it: no lock).
type volumes struct {
	claims  map[string]*api.PersistentVolumeClaim // namespace/name
	pvs     map[string]*api.PersistentVolume
	classes map[string]*api.StorageClass
	// assumed holds the node chosen for a claim whose selected-node
	// annotation is being written, so the claim's next pod goes there too.
	assumed map[string]string
}

func newVolumes() *volumes {
	return &volumes{claims: map[string]*api.PersistentVolumeClaim{}, pvs: map[string]*api.PersistentVolume{},
		classes: map[string]*api.StorageClass{}, assumed: map[string]string{}}
}

// podClaims returns the claim names of p's volumes.
func podClaims(p *api.Pod) []string {
	var out []string
	for i := range p.Spec.Volumes {
		if n := p.Spec.Volumes[i].PVCVolumeName(); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// handleVolume applies an event of a claim, volume or class and returns
// whether pods waiting on volumes should be looked at again.
func (v *volumes) handle(typ store.EventType, obj api.Object) {
	del := typ == store.Deleted
	switch o := obj.(type) {
	case *api.PersistentVolumeClaim:
		k := o.Namespace + "/" + o.Name
		if del {
			delete(v.claims, k)
			delete(v.assumed, k)
			return
		}
		v.claims[k] = o
		if o.Annotations[api.AnnotationSelectedNode] != "" || o.Spec.VolumeName != "" {
			delete(v.assumed, k)
		}
	case *api.PersistentVolume:
		if del {
			delete(v.pvs, o.Name)
		} else {
			v.pvs[o.Name] = o
		}
	case *api.StorageClass:
		if del {
			delete(v.classes, o.Name)
		} else {
			v.classes[o.Name] = o
		}
	}
}

// preFilter returns why pi cannot be placed on any node because of its
// claims ("" when nodes may be checked): a claim missing, being deleted,
// bound to a volume that does not exist, or unbound in a class that binds
// without waiting for a pod.
func (v *volumes) preFilter(pi *podInfo) string {
	for _, name := range pi.claims {
		c := v.claims[pi.pod.Namespace+"/"+name]
		switch {
		case c == nil:
			return ClaimNotFound(name)
		case c.DeletionTimestamp != nil:
			return fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
		case c.Spec.VolumeName != "":
			if v.pvs[c.Spec.VolumeName] == nil {
				return fmt.Sprintf("persistentvolumeclaim %q bound to non-existent persistentvolume %q", name, c.Spec.VolumeName)
			}
		default:
			sc := v.classes[c.ClassName()]
			if c.ClassName() == "" || sc == nil || sc.BindingMode() != api.VolumeBindingWaitForFirstConsumer {
				return ReasonUnboundImmediateClaims
			}
		}
	}
	return ""
}

// volumeCheck is the node filter of the claims of a pod that passed
// preFilter: a bound claim's volume must be usable from the node; an
// unbound (WaitForFirstConsumer) one must be selected for no other node,
// and either its class provisions on any node (kyb.dev/local) or a free
// volume that serves it is usable from the node.
type volumeCheck struct{ v *volumes }

func (vc volumeCheck) check(p *podInfo, n *nodeInfo) failure {
	if len(p.claims) == 0 {
		return failure{}
	}
	return failure{code: vc.v.check(p, n)}
}

func (v *volumes) check(pi *podInfo, ni *nodeInfo) uint16 {
	node := ni.node
	if node == nil {
		node = &api.Node{ObjectMeta: api.ObjectMeta{Name: ni.name, Labels: ni.labels}}
	}
	for _, name := range pi.claims {
		k := pi.pod.Namespace + "/" + name
		c := v.claims[k]
		if c == nil {
			return failVolumeBind
		}
		if c.Spec.VolumeName != "" {
			pv := v.pvs[c.Spec.VolumeName]
			if pv == nil {
				return failVolumeBind
			}
			if pv.Spec.NodeAffinity != nil && !pv.Spec.NodeAffinity.Required.Matches(node) {
				return failVolumeAffinity
			}
			continue
		}
		if sel := v.selected(k, c); sel != "" && sel != ni.name {
			return failVolumeAffinity
		}
		if sc := v.classes[c.ClassName()]; sc != nil && sc.Provisioner == api.LocalProvisioner {
			continue
		}
		if !v.freeVolumeFor(c, node) {
			return failVolumeBind
		}
	}
	return 0
}

// selected returns the node chosen for an unbound claim: its annotation,
// else one this scheduler is writing.
func (v *volumes) selected(key string, c *api.PersistentVolumeClaim) string {
	if s := c.Annotations[api.AnnotationSelectedNode]; s != "" {
		return s
	}
	return v.assumed[key]
}

// freeVolumeFor reports whether a free volume serves c from node.
func (v *volumes) freeVolumeFor(c *api.PersistentVolumeClaim, node *api.Node) bool {
	for _, pv := range v.pvs {
		if pv.Spec.ClaimRef != nil && !(pv.Spec.ClaimRef.Namespace == c.Namespace && pv.Spec.ClaimRef.Name == c.Name) {
			continue
		}
		if pv.Status.Phase != api.VolumeAvailable && pv.Spec.ClaimRef == nil {
			continue
		}
		if ok, _ := pv.MatchesClaim(c); !ok {
			continue
		}
		if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required.Matches(node) {
			return true
		}
	}
	return false
}

// toSelect returns the unbound claims of pi that have no node selected
// yet, and assumes node for them.
func (v *volumes) toSelect(pi *podInfo, node string) []string {
	var out []string
	for _, name := range pi.claims {
		k := pi.pod.Namespace + "/" + name
		c := v.claims[k]
		if c == nil || c.Spec.VolumeName != "" || c.Annotations[api.AnnotationSelectedNode] != "" {
			continue
		}
		v.assumed[k] = node
		out = append(out, name)
	}
	return out
}

// SelectNode sets the claim's volume.kubernetes.io/selected-node to node
// (compare-and-set on a fresh read), unless the claim is bound or has a
// node already; a missing claim is NotFound.
func (b *StoreBinder) SelectNode(ctx context.Context, namespace, claim, node string) error {
	kind := api.KindOf(&api.PersistentVolumeClaim{})
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := b.Store.Get(ctx, kind, namespace, claim)
		if err != nil {
			return err
		}
		c := o.(*api.PersistentVolumeClaim)
		if c.Spec.VolumeName != "" {
			return nil
		}
		if s := c.Annotations[api.AnnotationSelectedNode]; s != "" {
			if s != node {
				return fmt.Errorf("claim selected for node %s meanwhile", s)
			}
			return nil
		}
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[api.AnnotationSelectedNode] = node
		return b.Store.Update(ctx, c)
	})
	if err != nil {
		return fmt.Errorf("select node %s for claim %s/%s: %w", node, namespace, claim, err)
	}
	return nil
}

// selectClaims annotates the job's claims before its bind (binder must
// implement ClaimSelector; otherwise nothing is written).
func selectClaims(ctx context.Context, b Binder, j *job) error {
	cs, ok := b.(ClaimSelector)
	if !ok {
		return nil
	}
	for _, name := range j.claims {
		if err := cs.SelectNode(ctx, j.pod.Namespace, name, j.node); err != nil {
			// Not a Conflict or NotFound of the pod: the pod is retried
			// after a back-off, not left waiting for a change of its own.
			return fmt.Errorf("%v", err)
		}
	}
	return nil
}

// requeueVolumeWaiters queues again the parked pods that have claims: a
// claim, volume or class changed, and may now let them in.
func (c *core) requeueVolumeWaiters() {
	for key, pi := range c.parked {
		if len(pi.claims) > 0 {
			delete(c.parked, key)
			c.enqueue(pi)
		}
	}
}
