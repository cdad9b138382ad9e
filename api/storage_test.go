package api

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// wantField validates obj (defaulted) and checks that it is valid (field
// "") or refused with a 422 naming field.
func wantField(t *testing.T, obj Object, field string) {
	t.Helper()
	Default(obj)
	err := Validate(obj)
	if field == "" {
		if err != nil {
			t.Fatalf("valid object refused: %v", err)
		}
		return
	}
	st, ok := err.(*Status)
	if !ok || st.Code != 422 {
		t.Fatalf("got %v, want a 422 naming %s", err, field)
	}
	for _, c := range st.Causes {
		if c.Field == field {
			return
		}
	}
	t.Fatalf("causes %+v do not name %s", st.Causes, field)
}

func TestValidateStorageClass(t *testing.T) {
	str := func(s string) *string { return &s }
	yes := true
	sc := func(f func(*StorageClass)) *StorageClass {
		s := &StorageClass{ObjectMeta: ObjectMeta{Name: "fast"}, Provisioner: LocalProvisioner, VolumeBindingMode: str(VolumeBindingWaitForFirstConsumer)}
		f(s)
		return s
	}
	cases := []struct {
		name  string
		obj   *StorageClass
		field string
	}{
		{"valid", sc(func(*StorageClass) {}), ""},
		{"built-in local", LocalStorageClass(), ""},
		{"no provisioner", sc(func(s *StorageClass) { s.Provisioner = "" }), "provisioner"},
		{"bad reclaimPolicy", sc(func(s *StorageClass) { s.ReclaimPolicy = str("Recycle") }), "reclaimPolicy"},
		{"bad binding mode", sc(func(s *StorageClass) { s.VolumeBindingMode = str("Later") }), "volumeBindingMode"},
		{"local with Immediate binding", sc(func(s *StorageClass) { s.VolumeBindingMode = str(VolumeBindingImmediate) }), "volumeBindingMode"},
		{"local with binding unset (Immediate)", sc(func(s *StorageClass) { s.VolumeBindingMode = nil }), "volumeBindingMode"},
		{"static class Immediate", sc(func(s *StorageClass) { s.Provisioner, s.VolumeBindingMode = NoProvisioner, nil }), ""},
		{"expansion refused", sc(func(s *StorageClass) { s.AllowVolumeExpansion = &yes }), "allowVolumeExpansion"},
		{"mountOptions refused", sc(func(s *StorageClass) { s.MountOptions = []string{"noatime"} }), "mountOptions"},
		{"local takes no parameters", sc(func(s *StorageClass) { s.Parameters = map[string]string{"type": "ssd"} }), "parameters[type]"},
		{"default annotation not a bool", sc(func(s *StorageClass) {
			s.Annotations = map[string]string{AnnotationDefaultStorageClass: "yes"}
		}), "metadata.annotations[storageclass.kubernetes.io/is-default-class]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.obj, tc.field) })
	}
	d := sc(func(s *StorageClass) { s.Provisioner, s.VolumeBindingMode = NoProvisioner, nil })
	Default(d)
	if d.Reclaim() != ReclaimDelete || d.BindingMode() != VolumeBindingImmediate {
		t.Fatalf("defaults: %s %s", d.Reclaim(), d.BindingMode())
	}
	l := LocalStorageClass()
	if !l.IsDefault() || l.BindingMode() != VolumeBindingWaitForFirstConsumer || l.Provisioner != LocalProvisioner {
		t.Fatalf("local class: %+v", l)
	}
}

func TestValidatePersistentVolume(t *testing.T) {
	str := func(s string) *string { return &s }
	pv := func(f func(*PersistentVolumeSpec)) *PersistentVolume {
		p := &PersistentVolume{ObjectMeta: ObjectMeta{Name: "pv1"}, Spec: PersistentVolumeSpec{
			Capacity:     ResourceList{ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:  []string{ReadWriteOnce},
			Local:        &LocalVolumeSource{Path: "/data/pv1"},
			NodeAffinity: HostNodeAffinity("n1"),
		}}
		f(&p.Spec)
		return p
	}
	cases := []struct {
		name  string
		obj   *PersistentVolume
		field string
	}{
		{"valid local", pv(func(*PersistentVolumeSpec) {}), ""},
		{"valid hostPath", pv(func(s *PersistentVolumeSpec) {
			s.Local, s.NodeAffinity, s.HostPath = nil, nil, &HostPathVolumeSource{Path: "/srv/x"}
		}), ""},
		{"no capacity", pv(func(s *PersistentVolumeSpec) { s.Capacity = nil }), "spec.capacity[storage]"},
		{"zero capacity", pv(func(s *PersistentVolumeSpec) { s.Capacity[ResourceStorage] = resource.MustParse("0") }), "spec.capacity[storage]"},
		{"other capacity", pv(func(s *PersistentVolumeSpec) { s.Capacity[ResourceCPU] = resource.MustParse("1") }), "spec.capacity[cpu]"},
		{"no access modes", pv(func(s *PersistentVolumeSpec) { s.AccessModes = nil }), "spec.accessModes"},
		{"bad access mode", pv(func(s *PersistentVolumeSpec) { s.AccessModes = []string{"WriteSometimes"} }), "spec.accessModes[0]"},
		{"ReadWriteOncePod refused", pv(func(s *PersistentVolumeSpec) { s.AccessModes = []string{ReadWriteOncePod} }), "spec.accessModes[0]"},
		{"Recycle refused", pv(func(s *PersistentVolumeSpec) { s.PersistentVolumeReclaimPolicy = "Recycle" }), "spec.persistentVolumeReclaimPolicy"},
		{"no source", pv(func(s *PersistentVolumeSpec) { s.Local = nil }), "spec"},
		{"two sources", pv(func(s *PersistentVolumeSpec) { s.HostPath = &HostPathVolumeSource{Path: "/x"} }), "spec"},
		{"relative local path", pv(func(s *PersistentVolumeSpec) { s.Local.Path = "data" }), "spec.local.path"},
		{"dotdot local path", pv(func(s *PersistentVolumeSpec) { s.Local.Path = "/data/../etc" }), "spec.local.path"},
		{"root local path", pv(func(s *PersistentVolumeSpec) { s.Local.Path = "/" }), "spec.local.path"},
		{"local without affinity", pv(func(s *PersistentVolumeSpec) { s.NodeAffinity = nil }), "spec.nodeAffinity"},
		{"bad affinity operator", pv(func(s *PersistentVolumeSpec) {
			s.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Operator = "Near"
		}), "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].operator"},
		{"block refused", pv(func(s *PersistentVolumeSpec) { s.VolumeMode = str("Block") }), "spec.volumeMode"},
		{"claimRef without namespace", pv(func(s *PersistentVolumeSpec) { s.ClaimRef = &ObjectReference{Name: "c"} }), "spec.claimRef.namespace"},
		{"bad class", pv(func(s *PersistentVolumeSpec) { s.StorageClassName = "Fast_Disk" }), "spec.storageClassName"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.obj, tc.field) })
	}
}

func TestValidatePersistentVolumeClaim(t *testing.T) {
	str := func(s string) *string { return &s }
	pvc := func(f func(*PersistentVolumeClaimSpec)) *PersistentVolumeClaim {
		c := &PersistentVolumeClaim{ObjectMeta: ObjectMeta{Name: "data", Namespace: "default"}, Spec: PersistentVolumeClaimSpec{
			AccessModes: []string{ReadWriteOnce},
			Resources:   VolumeResourceRequirements{Requests: ResourceList{ResourceStorage: resource.MustParse("1Gi")}},
		}}
		f(&c.Spec)
		return c
	}
	cases := []struct {
		name  string
		obj   *PersistentVolumeClaim
		field string
	}{
		{"valid", pvc(func(*PersistentVolumeClaimSpec) {}), ""},
		{"valid with class", pvc(func(s *PersistentVolumeClaimSpec) { s.StorageClassName = str("local") }), ""},
		{"no request", pvc(func(s *PersistentVolumeClaimSpec) { s.Resources.Requests = nil }), "spec.resources.requests[storage]"},
		{"negative request", pvc(func(s *PersistentVolumeClaimSpec) {
			s.Resources.Requests[ResourceStorage] = resource.MustParse("-1Gi")
		}), "spec.resources.requests[storage]"},
		{"limit below request", pvc(func(s *PersistentVolumeClaimSpec) {
			s.Resources.Limits = ResourceList{ResourceStorage: resource.MustParse("1Mi")}
		}), "spec.resources.limits[storage]"},
		{"no access modes", pvc(func(s *PersistentVolumeClaimSpec) { s.AccessModes = nil }), "spec.accessModes"},
		{"bad class", pvc(func(s *PersistentVolumeClaimSpec) { s.StorageClassName = str("-x-") }), "spec.storageClassName"},
		{"dataSource refused", pvc(func(s *PersistentVolumeClaimSpec) {
			s.DataSource = &TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "other"}
		}), "spec.dataSource"},
		{"block refused", pvc(func(s *PersistentVolumeClaimSpec) { s.VolumeMode = str("Block") }), "spec.volumeMode"},
		{"bad selector", pvc(func(s *PersistentVolumeClaimSpec) {
			s.Selector = &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "k", Operator: "Maybe"}}}
		}), "spec.selector.matchExpressions[0].operator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.obj, tc.field) })
	}
}

func TestStorageImmutable(t *testing.T) {
	str := func(s string) *string { return &s }
	claim := &PersistentVolumeClaim{ObjectMeta: ObjectMeta{Name: "data", Namespace: "default"}, Spec: PersistentVolumeClaimSpec{
		AccessModes: []string{ReadWriteOnce},
		Resources:   VolumeResourceRequirements{Requests: ResourceList{ResourceStorage: resource.MustParse("1Gi")}},
	}}
	Default(claim)
	cases := []struct {
		name   string
		old    Object
		change func(Object)
		field  string // "" when allowed
	}{
		{"claim: class may be set once", claim, func(o Object) { o.(*PersistentVolumeClaim).Spec.StorageClassName = str("local") }, ""},
		{"claim: volumeName may be set once", claim, func(o Object) { o.(*PersistentVolumeClaim).Spec.VolumeName = "pv1" }, ""},
		{"claim: request is immutable", claim, func(o Object) {
			o.(*PersistentVolumeClaim).Spec.Resources.Requests[ResourceStorage] = resource.MustParse("2Gi")
		}, "spec"},
		{"class: binding mode is immutable", LocalStorageClass(), func(o Object) {
			o.(*StorageClass).VolumeBindingMode = str(VolumeBindingImmediate)
		}, "volumeBindingMode"},
		{"volume: path is immutable", &PersistentVolume{ObjectMeta: ObjectMeta{Name: "pv1"}, Spec: PersistentVolumeSpec{
			Capacity: ResourceList{ResourceStorage: resource.MustParse("1Gi")}, AccessModes: []string{ReadWriteOnce},
			HostPath: &HostPathVolumeSource{Path: "/a"}}}, func(o Object) { o.(*PersistentVolume).Spec.HostPath.Path = "/b" }, "spec.hostPath"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.old)
			nw := DeepCopy(tc.old)
			tc.change(nw)
			err := ValidateUpdate(tc.old, nw)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("allowed change refused: %v", err)
				}
				return
			}
			st, ok := err.(*Status)
			if !ok || st.Code != 422 {
				t.Fatalf("got %v, want 422", err)
			}
			for _, c := range st.Causes {
				if c.Field == tc.field {
					return
				}
			}
			t.Fatalf("causes %+v do not name %s", st.Causes, tc.field)
		})
	}
}

func TestPodPVCVolume(t *testing.T) {
	pod := func(claim string, mount string) *Pod {
		return &Pod{ObjectMeta: ObjectMeta{Name: "p", Namespace: "default"}, Spec: PodSpec{
			Volumes:    []Volume{{Name: "data", PersistentVolumeClaim: &PersistentVolumeClaimVolumeSource{ClaimName: claim}}},
			Containers: []Container{{Name: "c", Image: "busybox:1", VolumeMounts: []VolumeMount{{Name: mount, MountPath: "/data"}}}},
		}}
	}
	cases := []struct {
		name  string
		obj   *Pod
		field string
	}{
		{"valid", pod("data", "data"), ""},
		{"no claim name", pod("", "data"), "spec.volumes[0].persistentVolumeClaim.claimName"},
		{"4 KB claim name", pod(strings.Repeat("a", 4096), "data"), "spec.volumes[0].persistentVolumeClaim.claimName"},
		{"bad claim name", pod("Data_1", "data"), "spec.volumes[0].persistentVolumeClaim.claimName"},
		{"mount of an undefined volume", pod("data", "other"), "spec.containers[0].volumeMounts[0].name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.obj, tc.field) })
	}
	// Decoded from a manifest, the source is kept (not dropped as unknown).
	ds, err := Decode([]byte(`apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  subdomain: web
  hostname: p
  volumes: [{name: data, persistentVolumeClaim: {claimName: data, readOnly: true}}]
  containers: [{name: c, image: busybox:1, volumeMounts: [{name: data, mountPath: /data}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := ds[0].Object.(*Pod)
	if v := p.Spec.Volumes[0].PersistentVolumeClaim; v == nil || v.ClaimName != "data" || !v.ReadOnly || p.Spec.Subdomain != "web" {
		t.Fatalf("decoded %+v", p.Spec)
	}
	if len(ds[0].Warnings) != 0 {
		t.Fatalf("warnings %v", ds[0].Warnings)
	}
}

func TestNodeSelectorMatches(t *testing.T) {
	n := &Node{ObjectMeta: ObjectMeta{Name: "n1", Labels: map[string]string{LabelHostname: "n1", "disks": "3"}}}
	sel := func(reqs ...NodeSelectorRequirement) *NodeSelector {
		return &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{{MatchExpressions: reqs}}}
	}
	cases := []struct {
		name string
		s    *NodeSelector
		want bool
	}{
		{"host", HostNodeAffinity("n1").Required, true},
		{"other host", HostNodeAffinity("n2").Required, false},
		{"nil", nil, false},
		{"Gt", sel(NodeSelectorRequirement{Key: "disks", Operator: "Gt", Values: []string{"2"}}), true},
		{"Lt", sel(NodeSelectorRequirement{Key: "disks", Operator: "Lt", Values: []string{"2"}}), false},
		{"DoesNotExist", sel(NodeSelectorRequirement{Key: "gpu", Operator: "DoesNotExist"}), true},
		{"field", &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{{MatchFields: []NodeSelectorRequirement{{Key: "metadata.name", Operator: "In", Values: []string{"n1"}}}}}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Matches(n); got != tc.want {
				t.Fatalf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
	if (&PersistentVolume{Spec: PersistentVolumeSpec{NodeAffinity: HostNodeAffinity("n1")}}).NodeName() != "n1" {
		t.Fatal("NodeName")
	}
}

func TestValidateStatefulSet(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	ios := func(v IntOrString) *IntOrString { return &v }
	claim := PersistentVolumeClaim{ObjectMeta: ObjectMeta{Name: "data"}, Spec: PersistentVolumeClaimSpec{
		AccessModes: []string{ReadWriteOnce},
		Resources:   VolumeResourceRequirements{Requests: ResourceList{ResourceStorage: resource.MustParse("1Gi")}},
	}}
	ss := func(f func(*StatefulSet)) *StatefulSet {
		s := &StatefulSet{ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"}, Spec: StatefulSetSpec{
			Selector: &LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: appsTemplate(),
			ServiceName: "web", VolumeClaimTemplates: []PersistentVolumeClaim{*DeepCopy(&claim)},
		}}
		f(s)
		return s
	}
	cases := []struct {
		name  string
		obj   *StatefulSet
		field string
	}{
		{"valid", ss(func(*StatefulSet) {}), ""},
		{"valid mount of a claim template", ss(func(s *StatefulSet) {
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}
		}), ""},
		{"mount of neither a volume nor a claim template", ss(func(s *StatefulSet) {
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []VolumeMount{{Name: "logs", MountPath: "/logs"}}
		}), "spec.template.spec.containers[0].volumeMounts[0].name"},
		{"valid Parallel OnDelete", ss(func(s *StatefulSet) {
			s.Spec.PodManagementPolicy = ParallelPodManagement
			s.Spec.UpdateStrategy.Type = OnDeleteStatefulSetStrategyType
		}), ""},
		{"dotted name", ss(func(s *StatefulSet) { s.Name = "web.v1" }), "metadata.name"},
		{"pod name too long", ss(func(s *StatefulSet) { s.Name = strings.Repeat("w", 62); s.Spec.Replicas = i32(10) }), "metadata.name"},
		{"bad policy", ss(func(s *StatefulSet) { s.Spec.PodManagementPolicy = "Random" }), "spec.podManagementPolicy"},
		{"negative partition", ss(func(s *StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{Partition: i32(-1)}
		}), "spec.updateStrategy.rollingUpdate.partition"},
		{"maxUnavailable refused", ss(func(s *StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{MaxUnavailable: ios(FromInt(2))}
		}), "spec.updateStrategy.rollingUpdate.maxUnavailable"},
		{"bad retention", ss(func(s *StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: "Keep"}
		}), "spec.persistentVolumeClaimRetentionPolicy.whenScaled"},
		{"bad service name", ss(func(s *StatefulSet) { s.Spec.ServiceName = "Web" }), "spec.serviceName"},
		{"claim template without request", ss(func(s *StatefulSet) { s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = nil }),
			"spec.volumeClaimTemplates[0].spec.resources.requests[storage]"},
		{"claim template clashing with a volume", ss(func(s *StatefulSet) {
			s.Spec.Template.Spec.Volumes = []Volume{{Name: "data", EmptyDir: &EmptyDirVolumeSource{}}}
		}), "spec.volumeClaimTemplates[0].metadata.name"},
		{"selector not matching", ss(func(s *StatefulSet) { s.Spec.Selector.MatchLabels = map[string]string{"app": "db"} }), "spec.template.metadata.labels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.obj, tc.field) })
	}

	old := ss(func(*StatefulSet) {})
	Default(old)
	scaled := DeepCopy(old)
	scaled.Spec.Replicas = i32(5)
	scaled.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	if err := ValidateUpdate(old, scaled); err != nil {
		t.Fatalf("scale and template change refused: %v", err)
	}
	moved := DeepCopy(old)
	moved.Spec.ServiceName = "other"
	if st, ok := ValidateUpdate(old, moved).(*Status); !ok || st.Causes[0].Field != "spec" {
		t.Fatalf("serviceName change: got %v", st)
	}
	if *old.Spec.Replicas != 1 || old.Spec.PodManagementPolicy != OrderedReadyPodManagement || old.Partition() != 0 ||
		old.RetentionWhenScaled() != RetainPVCRetentionPolicy || old.ClaimName("data", 2) != "data-web-2" {
		t.Fatalf("defaults: %+v", old.Spec)
	}
}
