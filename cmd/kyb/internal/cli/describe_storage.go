package cli

import (
	"io"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// describeStorage describes a claim or a volume as kubectl does; it
// reports false for other kinds.
func describeStorage(w io.Writer, obj api.Object) bool {
	switch o := obj.(type) {
	case *api.PersistentVolumeClaim:
		kv(w, "Name", o.Name)
		kv(w, "Namespace", o.Namespace)
		kv(w, "StorageClass", o.ClassName())
		kv(w, "Status", o.Status.Phase)
		kv(w, "Volume", o.Spec.VolumeName)
		kv(w, "Labels", mapText(o.Labels))
		kv(w, "Annotations", mapText(o.Annotations))
		q := o.Status.Capacity[api.ResourceStorage]
		capacity := ""
		if !q.IsZero() {
			capacity = q.String()
		}
		kv(w, "Capacity", capacity)
		kv(w, "Access Modes", accessModesText(o.Status.AccessModes))
		kv(w, "VolumeMode", volumeModeText(o.Spec.VolumeMode))
		req := o.Request()
		kv(w, "Requested", req.String())
	case *api.PersistentVolume:
		kv(w, "Name", o.Name)
		kv(w, "Labels", mapText(o.Labels))
		kv(w, "Annotations", mapText(o.Annotations))
		kv(w, "StorageClass", o.Spec.StorageClassName)
		kv(w, "Status", o.Status.Phase)
		claim := ""
		if r := o.Spec.ClaimRef; r != nil {
			claim = r.Namespace + "/" + r.Name
		}
		kv(w, "Claim", claim)
		kv(w, "Reclaim Policy", o.Spec.PersistentVolumeReclaimPolicy)
		kv(w, "Access Modes", accessModesText(o.Spec.AccessModes))
		kv(w, "VolumeMode", volumeModeText(o.Spec.VolumeMode))
		q := o.Storage()
		kv(w, "Capacity", q.String())
		affinity := "<none>"
		if a := o.Spec.NodeAffinity; a != nil && a.Required != nil {
			var terms []string
			for _, t := range a.Required.NodeSelectorTerms {
				var reqs []string
				for _, r := range t.MatchExpressions {
					reqs = append(reqs, r.Key+" "+strings.ToLower(r.Operator)+" ["+strings.Join(r.Values, ", ")+"]")
				}
				for _, r := range t.MatchFields {
					reqs = append(reqs, r.Key+" "+strings.ToLower(r.Operator)+" ["+strings.Join(r.Values, ", ")+"]")
				}
				terms = append(terms, strings.Join(reqs, ", "))
			}
			affinity = "Required Terms: " + strings.Join(terms, " or ")
		}
		kv(w, "Node Affinity", affinity)
		kv(w, "Message", o.Status.Message)
		switch {
		case o.Spec.Local != nil:
			kv(w, "Source", "LocalVolume (a directory on the node)")
			kv(w, "    Path", o.Spec.Local.Path)
		case o.Spec.HostPath != nil:
			kv(w, "Source", "HostPath (bare host directory volume)")
			kv(w, "    Path", o.Spec.HostPath.Path)
			kv(w, "    HostPathType", o.Spec.HostPath.Type)
		}
	default:
		return false
	}
	return true
}
