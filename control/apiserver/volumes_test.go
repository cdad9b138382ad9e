package apiserver_test

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
)

// TestNodeVolumeVerbs: a node gets the volume of a claim only for a pod
// bound to it that names the claim (not another node's pod, not another
// claim, not a 4 KB name, not while unbound), and may report deleted only
// a released Delete volume provisioned for it; what it may not do changes
// nothing.
func TestNodeVolumeVerbs(t *testing.T) {
	e := newEnv(t)
	e.registerNode(t, "n1", &api.Node{ObjectMeta: api.ObjectMeta{Labels: map[string]string{api.LabelHostname: "n1"}}})
	e.registerNode(t, "n2", &api.Node{ObjectMeta: api.ObjectMeta{Labels: map[string]string{api.LabelHostname: "n2"}}})
	e.apply(t, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  resources: {requests: {storage: 1Gi}}\n")
	e.apply(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: db}\nspec:\n  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]\n  containers: [{name: c, image: busybox:1, volumeMounts: [{name: d, mountPath: /d}]}]\n")
	pod := e.bind(t, "default", "db", "n1")
	ask := func(node string, r api.VolumeRequest) (*api.PersistentVolume, error) {
		b, _ := json.Marshal(r)
		out, err := e.c.Request(e.ctx, api.NodeSubject(node, api.NodeVerbVolume), b)
		if err != nil {
			return nil, err
		}
		var pv api.PersistentVolume
		return &pv, json.Unmarshal(out, &pv)
	}
	good := api.VolumeRequest{Namespace: "default", Pod: "db", UID: pod.UID, Claim: "data"}
	if _, err := ask("n1", good); !api.IsConflict(err) || !strings.Contains(err.Error(), "not bound yet") {
		t.Fatalf("unbound claim: %v, want 409 not bound yet", err)
	}
	// Bind it by hand (as the binder does) to a volume on n1.
	pv := &api.PersistentVolume{ObjectMeta: api.ObjectMeta{Name: "pvc-x", Annotations: map[string]string{api.AnnotationProvisionedBy: api.LocalProvisioner}},
		Spec: api.PersistentVolumeSpec{Capacity: api.ResourceList{api.ResourceStorage: resource.MustParse("1Gi")}, AccessModes: []string{api.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: api.ReclaimDelete, Local: &api.LocalVolumeSource{Path: "/var/lib/kyb/agent/volumes/pvc-x"}, NodeAffinity: api.HostNodeAffinity("n1")}}
	api.Default(pv)
	if err := e.st.Create(e.ctx, pv); err != nil {
		t.Fatal(err)
	}
	o, err := e.st.Get(e.ctx, api.KindOf(&api.PersistentVolumeClaim{}), "default", "data")
	if err != nil {
		t.Fatal(err)
	}
	claim := o.(*api.PersistentVolumeClaim)
	claim.Spec.VolumeName, claim.Status.Phase = "pvc-x", api.ClaimBound
	if err := e.st.Update(e.ctx, claim); err != nil {
		t.Fatal(err)
	}
	pv.Spec.ClaimRef = &api.ObjectReference{Namespace: "default", Name: "data", UID: claim.UID}
	pv.Status.Phase = api.VolumeBound
	if err := e.st.Update(e.ctx, pv); err != nil {
		t.Fatal(err)
	}
	got, err := ask("n1", good)
	if err != nil || got.Name != "pvc-x" {
		t.Fatalf("n1 asking for its pod's claim: %v %+v", err, got)
	}
	for _, tc := range []struct {
		name, node string
		r          api.VolumeRequest
		reason     string
	}{
		{"another node's pod", "n2", good, api.ReasonForbidden},
		{"a claim the pod does not name", "n1", api.VolumeRequest{Namespace: "default", Pod: "db", UID: pod.UID, Claim: "other"}, api.ReasonForbidden},
		{"an old pod of the name", "n1", api.VolumeRequest{Namespace: "default", Pod: "db", UID: "not-the-uid", Claim: "data"}, api.ReasonForbidden},
		{"a pod that does not exist", "n1", api.VolumeRequest{Namespace: "default", Pod: "ghost", Claim: "data"}, api.ReasonForbidden},
		{"a 4 KB claim name", "n1", api.VolumeRequest{Namespace: "default", Pod: "db", Claim: strings.Repeat("a", 4096)}, api.ReasonBadRequest},
		{"no pod", "n1", api.VolumeRequest{Namespace: "default", Claim: "data"}, api.ReasonBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ask(tc.node, tc.r); api.ReasonOf(err) != tc.reason {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}

	deleted := func(node, name string) error {
		b, _ := json.Marshal(api.VolumeDeleted{Name: name})
		_, err := e.c.Request(e.ctx, api.NodeSubject(node, api.NodeVerbVolumeDeleted), b)
		return err
	}
	// Still bound: no node may have it removed; n2 never.
	if err := deleted("n1", "pvc-x"); api.ReasonOf(err) != api.ReasonForbidden {
		t.Fatalf("deleting a bound volume: %v, want Forbidden", err)
	}
	pv = must(e.st.Get(e.ctx, api.KindOf(&api.PersistentVolume{}), "", "pvc-x")).(*api.PersistentVolume)
	pv.Status.Phase = api.VolumeReleased
	if err := e.st.Update(e.ctx, pv); err != nil {
		t.Fatal(err)
	}
	if err := deleted("n2", "pvc-x"); api.ReasonOf(err) != api.ReasonForbidden {
		t.Fatalf("n2 deleting n1's volume: %v, want Forbidden", err)
	}
	if _, err := e.st.Get(e.ctx, api.KindOf(&api.PersistentVolume{}), "", "pvc-x"); err != nil {
		t.Fatalf("a refused deletion removed the volume: %v", err)
	}
	if err := deleted("n1", "pvc-x"); err != nil {
		t.Fatalf("n1 deleting its released volume: %v", err)
	}
	if _, err := e.st.Get(e.ctx, api.KindOf(&api.PersistentVolume{}), "", "pvc-x"); !api.IsNotFound(err) {
		t.Fatalf("volume still there: %v", err)
	}
	if err := deleted("n1", "pvc-x"); err != nil {
		t.Fatalf("a repeated report: %v, want an Ack", err)
	}
}
