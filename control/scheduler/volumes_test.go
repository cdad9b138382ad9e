package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestVolumeFilter runs the scheduler over a real store: a pod waits with
// a clear reason while its claim is missing or unbound (Immediate), goes
// to its bound volume's node, and, for a WaitForFirstConsumer claim, marks
// the claim with the node it chose (and a second pod of the claim follows
// it there).
func TestVolumeFilter(t *testing.T) {
	srv := testutil.StartNATS(t)
	st := openStore(t, srv)
	ctx := t.Context()
	create := func(obj api.Object) {
		t.Helper()
		api.Default(obj)
		if err := st.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		create(mkNode(n, "4", "8Gi", labels(api.LabelHostname, n)))
	}
	startScheduler(t, Config{}, st)
	podKind := api.KindOf(&api.Pod{})
	withClaim := func(name, claim string) *api.Pod {
		p := mkPod(name, "100m", "")
		p.Spec.Volumes = []api.Volume{{Name: "d", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
		return p
	}
	get := func(name string) *api.Pod {
		o, err := st.Get(ctx, podKind, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Pod)
	}
	waitMessage := func(name, want string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, func() error {
			p := get(name)
			c := p.Status.Condition(api.PodScheduled)
			if p.Spec.NodeName != "" || c == nil || !strings.Contains(c.Message, want) {
				return fmt.Errorf("pod %s: node %q, condition %+v, want message with %q", name, p.Spec.NodeName, c, want)
			}
			return nil
		})
	}
	waitNode := func(name, want string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, func() error {
			if got := get(name).Spec.NodeName; got != want {
				return fmt.Errorf("pod %s on %q, want %q", name, got, want)
			}
			return nil
		})
	}
	claim := func(name, class string) *api.PersistentVolumeClaim {
		return &api.PersistentVolumeClaim{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.PersistentVolumeClaimSpec{
			AccessModes: []string{api.ReadWriteOnce}, StorageClassName: &class,
			Resources: api.VolumeResourceRequirements{Requests: api.ResourceList{api.ResourceStorage: resource.MustParse("1Gi")}},
		}}
	}

	// Missing claim.
	create(withClaim("lost", "nothing"))
	waitMessage("lost", `0/3 nodes are available: 3 persistentvolumeclaim "nothing" not found.`)

	// Unbound claim of no class (binds Immediate): waits for the binder.
	create(claim("static", ""))
	create(withClaim("waiter", "static"))
	waitMessage("waiter", ReasonUnboundImmediateClaims)

	// Bound to a volume of n2: the pod goes to n2, and nowhere else fits.
	pv := &api.PersistentVolume{ObjectMeta: api.ObjectMeta{Name: "pv-n2"}, Spec: api.PersistentVolumeSpec{
		Capacity: api.ResourceList{api.ResourceStorage: resource.MustParse("1Gi")}, AccessModes: []string{api.ReadWriteOnce},
		Local: &api.LocalVolumeSource{Path: "/srv/a"}, NodeAffinity: api.HostNodeAffinity("n2"),
	}}
	create(pv)
	o, _ := st.Get(ctx, api.KindOf(&api.PersistentVolumeClaim{}), "default", "static")
	c := o.(*api.PersistentVolumeClaim)
	c.Spec.VolumeName = "pv-n2"
	if err := st.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitNode("waiter", "n2")
	// The volume's node full: the message names the conflict.
	big := withClaim("big", "static")
	big.Spec.Containers[0].Resources.Requests[api.ResourceCPU] = resource.MustParse("4")
	create(big)
	waitMessage("big", "0/3 nodes are available: 2 "+ReasonVolumeNodeAffinityConflict+", 1 Insufficient cpu.")

	// The missing claim appears bound to n2's volume: the parked pod is
	// looked at again.
	c2 := claim("nothing", "")
	c2.Spec.VolumeName = "pv-n2"
	create(c2)
	waitNode("lost", "n2")

	// WaitForFirstConsumer: the chosen node is written on the claim, and
	// the claim's next pod follows it even before the volume exists.
	create(api.LocalStorageClass())
	create(claim("wffc", api.LocalStorageClassName))
	create(withClaim("first", "wffc"))
	testutil.Eventually(t, 5*time.Second, func() error {
		if get("first").Spec.NodeName == "" {
			return fmt.Errorf("not bound")
		}
		return nil
	})
	node := get("first").Spec.NodeName
	o, err := st.Get(ctx, api.KindOf(&api.PersistentVolumeClaim{}), "default", "wffc")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.(*api.PersistentVolumeClaim).Annotations[api.AnnotationSelectedNode]; got != node {
		t.Fatalf("selected-node %q, pod on %q", got, node)
	}
	for i := range 4 {
		name := fmt.Sprintf("next-%d", i)
		create(withClaim(name, "wffc"))
		waitNode(name, node)
	}

	// WaitForFirstConsumer with no provisioner: only a node with a free
	// volume that serves the claim will do.
	mode := api.VolumeBindingWaitForFirstConsumer
	create(&api.StorageClass{ObjectMeta: api.ObjectMeta{Name: "static"}, Provisioner: api.NoProvisioner, VolumeBindingMode: &mode})
	create(claim("handmade", "static"))
	create(withClaim("picky", "handmade"))
	waitMessage("picky", "0/3 nodes are available: 3 "+ReasonVolumeBindConflict+".")
	small := &api.PersistentVolume{ObjectMeta: api.ObjectMeta{Name: "pv-n1-small"}, Spec: api.PersistentVolumeSpec{
		Capacity: api.ResourceList{api.ResourceStorage: resource.MustParse("100Mi")}, AccessModes: []string{api.ReadWriteOnce},
		StorageClassName: "static", Local: &api.LocalVolumeSource{Path: "/srv/s"}, NodeAffinity: api.HostNodeAffinity("n1"),
	}}
	fits := &api.PersistentVolume{ObjectMeta: api.ObjectMeta{Name: "pv-n3"}, Spec: api.PersistentVolumeSpec{
		Capacity: api.ResourceList{api.ResourceStorage: resource.MustParse("5Gi")}, AccessModes: []string{api.ReadWriteOnce},
		StorageClassName: "static", Local: &api.LocalVolumeSource{Path: "/srv/b"}, NodeAffinity: api.HostNodeAffinity("n3"),
	}}
	for _, pv := range []*api.PersistentVolume{small, fits} {
		api.Default(pv)
		pv.Status.Phase = api.VolumeAvailable // as the binder marks a free volume
		if err := st.Create(ctx, pv); err != nil {
			t.Fatal(err)
		}
	}
	waitNode("picky", "n3")
}
