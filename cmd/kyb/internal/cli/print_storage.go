package cli

import (
	"fmt"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// storageColumns are the columns of `kyb get` for StatefulSets and the
// storage kinds, as kubectl's (no VOLUMEATTRIBUTESCLASS: not served).
func storageColumns(kind string, wide bool) []string {
	var c []string
	switch kind {
	case "StatefulSet":
		c = []string{"NAME", "READY", "AGE"}
		if wide {
			c = append(c, "CONTAINERS", "IMAGES")
		}
	case "StorageClass":
		c = []string{"NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"}
	case "PersistentVolume":
		c = []string{"NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "REASON", "AGE"}
		if wide {
			c = append(c, "VOLUMEMODE")
		}
	case "PersistentVolumeClaim":
		c = []string{"NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"}
		if wide {
			c = append(c, "VOLUMEMODE")
		}
	case "ControllerRevision":
		c = []string{"NAME", "CONTROLLER", "REVISION", "AGE"}
	}
	return c
}

// isStorageKind reports whether storageColumns and storageRow serve kind
// (the storage kinds, StatefulSets and their ControllerRevisions).
func isStorageKind(kind string) bool {
	switch kind {
	case "StatefulSet", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "ControllerRevision":
		return true
	}
	return false
}

// accessModesText abbreviates access modes as kubectl does (RWO,ROX,...).
func accessModesText(modes []string) string {
	short := map[string]string{api.ReadWriteOnce: "RWO", api.ReadOnlyMany: "ROX", api.ReadWriteMany: "RWX", api.ReadWriteOncePod: "RWOP"}
	out := make([]string, 0, len(modes))
	for _, m := range modes {
		if s, ok := short[m]; ok {
			out = append(out, s)
		} else {
			out = append(out, m)
		}
	}
	return strings.Join(out, ",")
}

func volumeModeText(m *string) string {
	if m == nil {
		return api.VolumeModeFilesystem
	}
	return *m
}

// storageRow is the row of a StatefulSet or a storage object.
func (p *printer) storageRow(o api.Object) []string {
	switch v := o.(type) {
	case *api.StatefulSet:
		want := int32(1)
		if v.Spec.Replicas != nil {
			want = *v.Spec.Replicas
		}
		r := []string{v.Name, fmt.Sprintf("%d/%d", v.Status.ReadyReplicas, want), p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			var names, images []string
			for _, c := range v.Spec.Template.Spec.Containers {
				names = append(names, c.Name)
				images = append(images, c.Image)
			}
			r = append(r, strings.Join(names, ","), strings.Join(images, ","))
		}
		return r
	case *api.StorageClass:
		name := v.Name
		if v.IsDefault() {
			name += " (default)"
		}
		exp := "false"
		if v.AllowVolumeExpansion != nil && *v.AllowVolumeExpansion {
			exp = "true"
		}
		return []string{name, v.Provisioner, v.Reclaim(), v.BindingMode(), exp, p.age(v.CreationTimestamp)}
	case *api.PersistentVolume:
		claim := ""
		if r := v.Spec.ClaimRef; r != nil {
			claim = r.Namespace + "/" + r.Name
		}
		capacity := v.Storage()
		r := []string{v.Name, capacity.String(), accessModesText(v.Spec.AccessModes), v.Spec.PersistentVolumeReclaimPolicy,
			v.Status.Phase, claim, v.Spec.StorageClassName, v.Status.Reason, p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			r = append(r, volumeModeText(v.Spec.VolumeMode))
		}
		return r
	case *api.ControllerRevision:
		ctl := "<none>"
		if ref := api.ControllerOf(v); ref != nil {
			ctl = strings.ToLower(ref.Kind) + ".apps/" + ref.Name
		}
		return []string{v.Name, ctl, fmt.Sprint(v.Revision), p.age(v.CreationTimestamp)}
	case *api.PersistentVolumeClaim:
		capacity := ""
		if q, ok := v.Status.Capacity[api.ResourceStorage]; ok {
			capacity = q.String()
		}
		r := []string{v.Name, v.Status.Phase, v.Spec.VolumeName, capacity, accessModesText(v.Status.AccessModes), v.ClassName(), p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			r = append(r, volumeModeText(v.Spec.VolumeMode))
		}
		return r
	}
	m := o.GetObjectMeta()
	return []string{m.Name, "", p.age(m.CreationTimestamp)}
}
