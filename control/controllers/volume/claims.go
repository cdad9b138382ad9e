package volume

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// syncClaim binds the claim key, or waits, or provisions its volume.
func (c *Controller) syncClaim(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.pvcs.Get(key.Namespace, key.Name)
	if !ok {
		return framework.Result{}, nil // its volume's sync releases it
	}
	pvc := obj.(*api.PersistentVolumeClaim)
	if pvc.DeletionTimestamp != nil {
		return framework.Result{}, nil
	}
	if pvc.Spec.StorageClassName == nil {
		if def := c.defaultClass(); def != nil {
			return framework.Result{}, c.updateClaim(ctx, pvc, func(cur *api.PersistentVolumeClaim) bool {
				if cur.Spec.StorageClassName != nil {
					return false
				}
				name := def.Name
				cur.Spec.StorageClassName = &name
				return true
			})
		}
	}
	// Bound, or pre-bound by the user to a volume.
	if name := pvc.Spec.VolumeName; name != "" {
		vo, ok := c.pvs.Get("", name)
		if !ok {
			if pvc.Status.Phase == api.ClaimBound {
				c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeWarning, ReasonClaimLost, "Bound claim has lost its PersistentVolume %s. Data on the volume is lost!", name)
				return framework.Result{}, c.setClaimPhase(ctx, pvc, api.ClaimLost, nil)
			}
			return framework.Result{}, nil // waits for the volume to appear
		}
		pv := vo.(*api.PersistentVolume)
		switch r := pv.Spec.ClaimRef; {
		case r == nil:
			if ok, why := pv.MatchesClaim(pvc); !ok {
				c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeWarning, ReasonFailedBinding, "volume %q cannot serve the claim: %s", pv.Name, why)
				return framework.Result{}, nil
			}
			return framework.Result{}, c.bind(ctx, pv, pvc)
		case r.Namespace == pvc.Namespace && r.Name == pvc.Name && (r.UID == "" || r.UID == pvc.UID):
			if r.UID == pvc.UID && pvc.Status.Phase == api.ClaimBound && pv.Status.Phase == api.VolumeBound {
				return framework.Result{}, nil // bound both ways: nothing to write
			}
			return framework.Result{}, c.bind(ctx, pv, pvc)
		default:
			c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeWarning, ReasonFailedBinding, "volume %q is already bound to claim %s/%s", pv.Name, r.Namespace, r.Name)
			return framework.Result{}, nil
		}
	}
	// A volume pre-bound to the claim by its claimRef.
	for _, name := range c.byClaim.volumes(key) {
		o, ok := c.pvs.Get("", name)
		if !ok {
			continue
		}
		pv := o.(*api.PersistentVolume)
		if r := pv.Spec.ClaimRef; r != nil && r.Namespace == pvc.Namespace && r.Name == pvc.Name && (r.UID == "" || r.UID == pvc.UID) && pv.DeletionTimestamp == nil {
			if ok, _ := pv.MatchesClaim(pvc); ok {
				return framework.Result{}, c.bind(ctx, pv, pvc)
			}
		}
	}
	var class *api.StorageClass
	if name := pvc.ClassName(); name != "" {
		co, ok := c.classes.Get("", name)
		if !ok {
			c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeWarning, ReasonProvisioningFailed, "storageclass.storage.k8s.io %q not found", name)
			return framework.Result{}, nil
		}
		class = co.(*api.StorageClass)
	}
	node := ""
	if class != nil && class.BindingMode() == api.VolumeBindingWaitForFirstConsumer {
		node = pvc.Annotations[api.AnnotationSelectedNode]
		if node == "" {
			c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeNormal, ReasonWaitForFirstConsumer, "waiting for first consumer to be created before binding")
			return framework.Result{}, nil
		}
	}
	if pv := c.findVolume(pvc, node); pv != nil {
		return framework.Result{}, c.bind(ctx, pv, pvc)
	}
	if class == nil || class.Provisioner != api.LocalProvisioner {
		return framework.Result{}, nil // a volume made by hand will bind it
	}
	if node == "" {
		// Validation refuses kyb.dev/local with Immediate binding.
		return framework.Result{}, nil
	}
	return framework.Result{}, c.provision(ctx, pvc, class, node)
}

// defaultClass returns the default storage class (the newest when several
// are marked, as Kubernetes), or nil.
func (c *Controller) defaultClass() *api.StorageClass {
	var def *api.StorageClass
	for _, o := range c.classes.List("", nil) {
		sc := o.(*api.StorageClass)
		if sc.IsDefault() && (def == nil || sc.CreationTimestamp.After(def.CreationTimestamp) ||
			sc.CreationTimestamp.Equal(def.CreationTimestamp) && sc.Name < def.Name) {
			def = sc
		}
	}
	return def
}

// findVolume returns the smallest free volume that serves pvc and, when
// node is set, can be used from that node; nil when none.
func (c *Controller) findVolume(pvc *api.PersistentVolumeClaim, node string) *api.PersistentVolume {
	var n *api.Node
	if node != "" {
		if o, ok := c.nodes.Get("", node); ok {
			n = o.(*api.Node)
		} else {
			n = &api.Node{ObjectMeta: api.ObjectMeta{Name: node, Labels: map[string]string{api.LabelHostname: node}}}
		}
	}
	var best *api.PersistentVolume
	for _, o := range c.pvs.List("", nil) {
		pv := o.(*api.PersistentVolume)
		if pv.Spec.ClaimRef != nil || pv.DeletionTimestamp != nil || pv.Status.Phase != api.VolumeAvailable {
			continue
		}
		if ok, _ := pv.MatchesClaim(pvc); !ok {
			continue
		}
		if n != nil && pv.Spec.NodeAffinity != nil && !pv.Spec.NodeAffinity.Required.Matches(n) {
			continue
		}
		if best == nil {
			best = pv
			continue
		}
		a, b := pv.Storage(), best.Storage()
		if cmp := a.Cmp(b); cmp < 0 || cmp == 0 && pv.Name < best.Name {
			best = pv
		}
	}
	return best
}

// bind binds pv and pvc: the volume's claimRef first (compare-and-set; a
// volume taken meanwhile fails with a conflict and the claim is looked at
// again), then the claim's volumeName, then the phases.
func (c *Controller) bind(ctx context.Context, pv *api.PersistentVolume, pvc *api.PersistentVolumeClaim) error {
	err := c.updateVolume(ctx, pv, func(cur *api.PersistentVolume) (bool, error) {
		if r := cur.Spec.ClaimRef; r != nil && !(r.Namespace == pvc.Namespace && r.Name == pvc.Name && (r.UID == "" || r.UID == pvc.UID)) {
			return false, fmt.Errorf("volume %s was bound to claim %s/%s meanwhile: %w", cur.Name, r.Namespace, r.Name, api.NewConflict(pvKind.Name, cur.Name, "bound meanwhile"))
		}
		changed := false
		if r := cur.Spec.ClaimRef; r == nil || r.UID != pvc.UID {
			cur.Spec.ClaimRef = &api.ObjectReference{Kind: pvcKind.Name, APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID}
			setAnnotation(&cur.ObjectMeta, api.AnnotationBoundByController, "yes")
			changed = true
		}
		if cur.Status.Phase != api.VolumeBound {
			cur.Status = api.PersistentVolumeStatus{Phase: api.VolumeBound}
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("bind claim %s/%s to volume %s: %w", pvc.Namespace, pvc.Name, pv.Name, err)
	}
	err = c.updateClaim(ctx, pvc, func(cur *api.PersistentVolumeClaim) bool {
		if cur.Spec.VolumeName != "" && cur.Spec.VolumeName != pv.Name {
			return false
		}
		want := api.PersistentVolumeClaimStatus{Phase: api.ClaimBound, AccessModes: slices.Clone(pv.Spec.AccessModes),
			Capacity: api.ResourceList{api.ResourceStorage: pv.Storage()}}
		if cur.Spec.VolumeName == pv.Name && cur.Status.Phase == api.ClaimBound && slices.Equal(cur.Status.AccessModes, want.AccessModes) {
			return false
		}
		if cur.Spec.VolumeName == "" {
			cur.Spec.VolumeName = pv.Name
			setAnnotation(&cur.ObjectMeta, api.AnnotationBoundByController, "yes")
		}
		cur.Status = want
		return true
	})
	if err != nil {
		return fmt.Errorf("bind claim %s/%s to volume %s: %w", pvc.Namespace, pvc.Name, pv.Name, err)
	}
	c.log.Info("bound claim", "claim", pvc.Namespace+"/"+pvc.Name, "volume", pv.Name)
	return nil
}

// provision makes a local volume for pvc on node: pvc-<claim uid>, its
// directory in the node's volumes directory, bound to the claim from the
// start (claimRef with the claim's uid), so no other claim can take it.
func (c *Controller) provision(ctx context.Context, pvc *api.PersistentVolumeClaim, class *api.StorageClass, node string) error {
	name := "pvc-" + pvc.UID
	if _, ok := c.pvs.Get("", name); ok {
		return nil // made already; its event binds the claim
	}
	dir := DefaultVolumesDir
	if o, ok := c.nodes.Get("", node); ok {
		if d := o.(*api.Node).Annotations[api.AnnotationVolumesDir]; d != "" {
			dir = d
		}
	}
	modes := slices.Clone(pvc.Spec.AccessModes)
	pv := &api.PersistentVolume{
		ObjectMeta: api.ObjectMeta{Name: name, Annotations: map[string]string{
			api.AnnotationProvisionedBy: api.LocalProvisioner, api.AnnotationBoundByController: "yes"}},
		Spec: api.PersistentVolumeSpec{
			Capacity:                      api.ResourceList{api.ResourceStorage: pvc.Request()},
			AccessModes:                   modes,
			PersistentVolumeReclaimPolicy: class.Reclaim(),
			StorageClassName:              class.Name,
			Local:                         &api.LocalVolumeSource{Path: path.Join(dir, name)},
			NodeAffinity:                  api.HostNodeAffinity(node),
			ClaimRef:                      &api.ObjectReference{Kind: pvcKind.Name, APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
		},
	}
	api.Default(pv)
	pv.Status.Phase = api.VolumeBound
	if err := api.Validate(pv); err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeWarning, ReasonProvisioningFailed, "make volume for node %s: %v", node, err)
		return fmt.Errorf("provision volume for claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	if err := c.st.Create(ctx, pv); err != nil && !api.IsAlreadyExists(err) {
		c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeWarning, ReasonProvisioningFailed, "make volume for node %s: %v", node, err)
		return fmt.Errorf("provision volume for claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	c.cfg.Recorder.Eventf(api.RefTo(pvc), api.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume %s on node %s", name, node)
	c.log.Info("provisioned volume", "claim", pvc.Namespace+"/"+pvc.Name, "volume", name, "node", node)
	return c.bind(ctx, pv, pvc)
}

// setClaimPhase writes a claim's phase (and capacity when given).
func (c *Controller) setClaimPhase(ctx context.Context, pvc *api.PersistentVolumeClaim, phase string, capacity api.ResourceList) error {
	return c.updateClaim(ctx, pvc, func(cur *api.PersistentVolumeClaim) bool {
		if cur.Status.Phase == phase {
			return false
		}
		cur.Status.Phase = phase
		if capacity != nil {
			cur.Status.Capacity = capacity
		}
		return true
	})
}

// updateClaim applies change to a fresh copy of the stored claim (the one
// of pvc's uid) and writes it when change says so, retrying conflicts.
func (c *Controller) updateClaim(ctx context.Context, pvc *api.PersistentVolumeClaim, change func(*api.PersistentVolumeClaim) bool) error {
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := c.st.Get(ctx, pvcKind, pvc.Namespace, pvc.Name)
		if err != nil {
			return err
		}
		cur := o.(*api.PersistentVolumeClaim)
		if cur.UID != pvc.UID || !change(cur) {
			return nil
		}
		return c.st.Update(ctx, cur)
	})
	if api.IsNotFound(err) {
		return nil
	}
	return err
}

// updateVolume applies change to a fresh copy of the stored volume and
// writes it when change says so, retrying conflicts.
func (c *Controller) updateVolume(ctx context.Context, pv *api.PersistentVolume, change func(*api.PersistentVolume) (bool, error)) error {
	return retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		o, err := c.st.Get(ctx, pvKind, "", pv.Name)
		if err != nil {
			return err
		}
		cur := o.(*api.PersistentVolume)
		if cur.UID != pv.UID && pv.UID != "" {
			return fmt.Errorf("volume %s was replaced: %w", pv.Name, api.NewConflict(pvKind.Name, pv.Name, "replaced"))
		}
		changed, err := change(cur)
		if err != nil || !changed {
			return err
		}
		return c.st.Update(ctx, cur)
	})
}

func setAnnotation(m *api.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}
