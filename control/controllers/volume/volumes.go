package volume

import (
	"context"
	"fmt"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
)

// syncVolume makes a new volume Available, keeps a bound one Bound, and
// releases (and reclaims) one whose claim is gone.
func (c *Controller) syncVolume(ctx context.Context, name string) (framework.Result, error) {
	obj, ok := c.pvs.Get("", name)
	if !ok {
		return framework.Result{}, nil
	}
	pv := obj.(*api.PersistentVolume)
	if pv.DeletionTimestamp != nil {
		return framework.Result{}, nil
	}
	r := pv.Spec.ClaimRef
	if r == nil {
		return framework.Result{}, c.setVolumePhase(ctx, pv, api.VolumeAvailable, "")
	}
	if r.UID == "" {
		// Pre-bound by the user to a claim: the claim's sync binds it.
		return framework.Result{}, c.setVolumePhase(ctx, pv, api.VolumeAvailable, "")
	}
	claim, err := c.claimOf(ctx, r)
	if err != nil {
		return framework.Result{}, err
	}
	if claim != nil {
		if claim.Spec.VolumeName == pv.Name || claim.Spec.VolumeName == "" {
			return framework.Result{}, nil // bound or binding: the claim's sync writes both
		}
		// The claim is bound to another volume: this one was reserved in
		// vain (a race lost); free it.
	}
	// Released: the claim is gone (or is another of the name).
	if pv.Status.Phase != api.VolumeReleased && pv.Status.Phase != api.VolumeFailed {
		if err := c.setVolumePhase(ctx, pv, api.VolumeReleased, ""); err != nil {
			return framework.Result{}, err
		}
	}
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case api.ReclaimDelete:
		return c.reclaimDelete(ctx, pv)
	default:
		return framework.Result{}, nil // Retain: kept, with its data, for an admin
	}
}

// claimOf returns the claim r names, when it is the one of r's uid; the
// store confirms an absence the cache reports (the cache may lag).
func (c *Controller) claimOf(ctx context.Context, r *api.ObjectReference) (*api.PersistentVolumeClaim, error) {
	if o, ok := c.pvcs.Get(r.Namespace, r.Name); ok {
		if pvc := o.(*api.PersistentVolumeClaim); pvc.UID == r.UID {
			return pvc, nil
		}
		return nil, nil
	}
	o, err := c.st.Get(ctx, pvcKind, r.Namespace, r.Name)
	if api.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up claim %s/%s: %w", r.Namespace, r.Name, err)
	}
	if pvc := o.(*api.PersistentVolumeClaim); pvc.UID == r.UID {
		return pvc, nil
	}
	return nil, nil
}

// reclaimDelete deletes a released volume of policy Delete: its directory
// on its node (volumes the local provisioner made), then the object. It
// waits while a pod that still runs names the claim (as Kubernetes'
// pvc-protection keeps a claim in use), so no data goes under a pod.
func (c *Controller) reclaimDelete(ctx context.Context, pv *api.PersistentVolume) (framework.Result, error) {
	if pv.Annotations[api.AnnotationProvisionedBy] != api.LocalProvisioner {
		msg := "reclaim policy Delete is only implemented for volumes provisioned by " + api.LocalProvisioner + "; delete the volume by hand"
		c.cfg.Recorder.Eventf(api.RefTo(pv), api.EventTypeWarning, ReasonVolumeFailedDelete, "%s", msg)
		return framework.Result{}, c.setVolumePhase(ctx, pv, api.VolumeFailed, msg)
	}
	if p := c.podUsing(pv.Spec.ClaimRef); p != "" {
		c.log.Debug("released volume still used", "volume", pv.Name, "pod", p)
		return framework.Result{}, nil // the pod's end queues the volume
	}
	node := pv.NodeName()
	if _, ok := c.nodes.Get("", node); !ok {
		if _, err := c.st.Get(ctx, nodeKind, "", node); api.IsNotFound(err) {
			msg := "the volume's node " + node + " no longer exists: nothing can delete its directory; delete the volume by hand"
			c.cfg.Recorder.Eventf(api.RefTo(pv), api.EventTypeWarning, ReasonVolumeFailedDelete, "%s", msg)
			return framework.Result{}, c.setVolumePhase(ctx, pv, api.VolumeFailed, msg)
		}
	}
	if c.cfg.Deleter == nil {
		return framework.Result{}, fmt.Errorf("delete volume %s: no deleter configured", pv.Name)
	}
	if err := c.cfg.Deleter.DeleteVolume(ctx, node, pv); err != nil {
		c.cfg.Recorder.Eventf(api.RefTo(pv), api.EventTypeWarning, ReasonVolumeFailedDelete, "ask node %s to delete the directory: %v", node, err)
		return framework.Result{}, fmt.Errorf("delete volume %s: %w", pv.Name, err)
	}
	c.log.Info("asked the node to delete the volume's directory", "volume", pv.Name, "node", node)
	// The node's confirmation removes the volume; ask again if it does not.
	return framework.Result{RequeueAfter: c.cfg.ResendAfter}, nil
}

// podUsing returns the name of a pod of r's namespace, scheduled and not
// finished, that names the claim r in its volumes, or "".
func (c *Controller) podUsing(r *api.ObjectReference) string {
	for _, o := range c.pods.List(r.Namespace, nil) {
		p := o.(*api.Pod)
		// As Kubernetes' pvc-protection: a pod not scheduled uses nothing
		// yet, and a finished one no more.
		if p.Spec.NodeName == "" || p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == r.Name {
				return p.Name
			}
		}
	}
	return ""
}

// setVolumePhase writes a volume's phase and message.
func (c *Controller) setVolumePhase(ctx context.Context, pv *api.PersistentVolume, phase, msg string) error {
	if pv.Status.Phase == phase && pv.Status.Message == msg {
		return nil
	}
	err := c.updateVolume(ctx, pv, func(cur *api.PersistentVolume) (bool, error) {
		if cur.Status.Phase == phase && cur.Status.Message == msg {
			return false, nil
		}
		cur.Status = api.PersistentVolumeStatus{Phase: phase, Message: msg}
		return true, nil
	})
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set volume %s %s: %w", pv.Name, phase, err)
	}
	return nil
}
