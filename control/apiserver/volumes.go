package apiserver

import (
	"context"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

var (
	pvKind  = api.KindOf(&api.PersistentVolume{})
	pvcKind = api.KindOf(&api.PersistentVolumeClaim{})
)

// handleNodeVolume answers an agent's VolumeRequest with the volume bound
// to the claim, only when the pod (by uid) is bound to that node and names
// the claim in its volumes, and the volume can be used from the node: an
// agent learns of no other volume.
func (s *Server) handleNodeVolume(req micro.Request) {
	var r api.VolumeRequest
	node, err := nodeBody(req.Subject(), req.Data(), &r, "VolumeRequest")
	if err != nil {
		syncErr(req, err)
		return
	}
	for _, f := range []struct{ name, v string }{{"namespace", r.Namespace}, {"pod", r.Pod}, {"claim", r.Claim}} {
		if f.v == "" || len(f.v) > 253 {
			syncErr(req, badField(f.name, []string{"required, at most 253 characters"}))
			return
		}
	}
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		pv, err := s.nodeVolume(ctx, node, r)
		if err != nil {
			return nil, err
		}
		return encode(pv)
	})
}

func (s *Server) nodeVolume(ctx context.Context, node string, r api.VolumeRequest) (*api.PersistentVolume, error) {
	forbidden := api.NewForbidden("node %q may not read the volume of claim %q: no pod bound to it names the claim", node, r.Claim)
	o, err := s.st.Get(ctx, podKind, r.Namespace, r.Pod)
	if api.IsNotFound(err) {
		return nil, forbidden
	}
	if err != nil {
		return nil, err
	}
	pod := o.(*api.Pod)
	if pod.Spec.NodeName != node || (r.UID != "" && pod.UID != r.UID) ||
		!slices.ContainsFunc(pod.Spec.Volumes, func(v api.Volume) bool { return v.PVCVolumeName() == r.Claim }) {
		return nil, forbidden
	}
	o, err = s.st.Get(ctx, pvcKind, r.Namespace, r.Claim)
	if err != nil {
		return nil, err
	}
	pvc := o.(*api.PersistentVolumeClaim)
	if pvc.Status.Phase != api.ClaimBound || pvc.Spec.VolumeName == "" {
		return nil, api.NewConflict(pvcKind.Name, r.Claim, "persistentvolumeclaim "+r.Claim+" is not bound yet")
	}
	o, err = s.st.Get(ctx, pvKind, "", pvc.Spec.VolumeName)
	if err != nil {
		return nil, err
	}
	pv := o.(*api.PersistentVolume)
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return nil, api.NewConflict(pvcKind.Name, r.Claim, "persistentvolumeclaim "+r.Claim+" is not bound yet (volume "+pv.Name+" names another claim)")
	}
	if a := pv.Spec.NodeAffinity; a != nil {
		n, err := s.st.Get(ctx, nodeKind, "", node)
		if err != nil {
			return nil, err
		}
		if !a.Required.Matches(n.(*api.Node)) {
			return nil, api.NewForbidden("volume %s cannot be used from node %q (its nodeAffinity)", pv.Name, node)
		}
	}
	return pv, nil
}

// handleNodeVolumeDeleted removes a volume whose directory its node has
// deleted: only a volume the local provisioner made for that node,
// released, of policy Delete (so no node can remove any other volume).
func (s *Server) handleNodeVolumeDeleted(req micro.Request) {
	var r api.VolumeDeleted
	node, err := nodeBody(req.Subject(), req.Data(), &r, "VolumeDeleted")
	if err == nil && (r.Name == "" || len(r.Name) > 253) {
		err = badField("name", []string{"required, at most 253 characters"})
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		o, err := s.st.Get(ctx, pvKind, "", r.Name)
		if api.IsNotFound(err) {
			return ackOK, nil
		}
		if err != nil {
			return nil, err
		}
		pv := o.(*api.PersistentVolume)
		if r.UID != "" && pv.UID != r.UID {
			return ackOK, nil // another volume of the name now
		}
		if pv.Annotations[api.AnnotationProvisionedBy] != api.LocalProvisioner || pv.NodeName() != node ||
			pv.Spec.PersistentVolumeReclaimPolicy != api.ReclaimDelete || pv.Status.Phase != api.VolumeReleased {
			return nil, api.NewForbidden("node %q may not delete volume %s: not a released volume of policy Delete provisioned for it", node, pv.Name)
		}
		if _, err := s.st.Delete(ctx, pvKind, "", pv.Name, pv.ResourceVersion); err != nil && !api.IsNotFound(err) {
			return nil, err
		}
		return ackOK, nil
	})
}

// mergeStorage keeps, on a re-applied claim or volume, what the binder and
// the scheduler filled in when the manifest leaves it out: a claim's
// volumeName, its (default) storageClassName and the binding annotations
// (volume.kubernetes.io/, pv.kubernetes.io/); a volume's claimRef and
// those annotations. Re-applying the manifest a claim was made from is so
// "unchanged", not a change of an immutable field.
func mergeStorage(existing, applied api.Object) {
	em, am := existing.GetObjectMeta(), applied.GetObjectMeta()
	for k, v := range em.Annotations {
		if !strings.HasPrefix(k, "volume.kubernetes.io/") && !strings.HasPrefix(k, "pv.kubernetes.io/") {
			continue
		}
		if _, ok := am.Annotations[k]; ok {
			continue
		}
		if am.Annotations == nil {
			am.Annotations = map[string]string{}
		}
		am.Annotations[k] = v
	}
	switch a := applied.(type) {
	case *api.PersistentVolumeClaim:
		e := existing.(*api.PersistentVolumeClaim)
		if a.Spec.VolumeName == "" {
			a.Spec.VolumeName = e.Spec.VolumeName
		}
		if a.Spec.StorageClassName == nil {
			a.Spec.StorageClassName = e.Spec.StorageClassName
		}
	case *api.PersistentVolume:
		if e := existing.(*api.PersistentVolume); a.Spec.ClaimRef == nil {
			a.Spec.ClaimRef = e.Spec.ClaimRef
		}
	}
}
