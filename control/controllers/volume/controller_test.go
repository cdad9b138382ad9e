package volume_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/volume"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	pvKind  = api.KindOf(&api.PersistentVolume{})
	pvcKind = api.KindOf(&api.PersistentVolumeClaim{})
	podKind = api.KindOf(&api.Pod{})
)

// fakeDeleter records the directories it was asked to delete; it fails
// while fail is set (a node away).
type fakeDeleter struct {
	st      *store.Store
	mu      sync.Mutex
	deleted []string
	fail    bool
}

// DeleteVolume does what the node and the apiserver do: the directory
// goes, then the volume object.
func (d *fakeDeleter) DeleteVolume(ctx context.Context, node string, pv *api.PersistentVolume) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail {
		return fmt.Errorf("node %s unreachable", node)
	}
	d.deleted = append(d.deleted, node+":"+pv.Spec.Local.Path)
	_, err := d.st.Delete(ctx, pvKind, "", pv.Name, "")
	return err
}

func (d *fakeDeleter) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.deleted...)
}

func start(t *testing.T) (context.Context, *store.Store, *fakeDeleter) {
	t.Helper()
	ctx, st := frameworktest.OpenStore(t)
	d := &fakeDeleter{st: st}
	frameworktest.Run(t, st, nil, func(mgr *framework.Manager) {
		mgr.Add("persistentvolume", volume.New(mgr, st, volume.Config{Deleter: d}, slog.New(slog.DiscardHandler)))
	})
	return ctx, st, d
}

func create(t *testing.T, ctx context.Context, st *store.Store, obj api.Object) {
	t.Helper()
	api.Default(obj)
	if err := api.Validate(obj); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

func claim(name, class, size string) *api.PersistentVolumeClaim {
	c := &api.PersistentVolumeClaim{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.PersistentVolumeClaimSpec{
		AccessModes: []string{api.ReadWriteOnce},
		Resources:   api.VolumeResourceRequirements{Requests: api.ResourceList{api.ResourceStorage: resource.MustParse(size)}},
	}}
	if class != "-" {
		c.Spec.StorageClassName = &class
	}
	return c
}

func hostVolume(name, size, reclaim string) *api.PersistentVolume {
	return &api.PersistentVolume{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.PersistentVolumeSpec{
		Capacity:                      api.ResourceList{api.ResourceStorage: resource.MustParse(size)},
		AccessModes:                   []string{api.ReadWriteOnce},
		PersistentVolumeReclaimPolicy: reclaim,
		Local:                         &api.LocalVolumeSource{Path: "/srv/" + name},
		NodeAffinity:                  api.HostNodeAffinity("n1"),
	}}
}

func getClaim(t *testing.T, ctx context.Context, st *store.Store, name string) *api.PersistentVolumeClaim {
	t.Helper()
	o, err := st.Get(ctx, pvcKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.PersistentVolumeClaim)
}

func getVolume(ctx context.Context, st *store.Store, name string) (*api.PersistentVolume, error) {
	o, err := st.Get(ctx, pvKind, "", name)
	if err != nil {
		return nil, err
	}
	return o.(*api.PersistentVolume), nil
}

// waitBound waits until the claim is Bound to a volume and returns it.
func waitBound(t *testing.T, ctx context.Context, st *store.Store, name string) (*api.PersistentVolumeClaim, *api.PersistentVolume) {
	t.Helper()
	var pvc *api.PersistentVolumeClaim
	var pv *api.PersistentVolume
	testutil.Eventually(t, 5*time.Second, func() error {
		pvc = getClaim(t, ctx, st, name)
		if pvc.Status.Phase != api.ClaimBound || pvc.Spec.VolumeName == "" {
			return fmt.Errorf("claim %s: %s", name, pvc.Status.Phase)
		}
		var err error
		if pv, err = getVolume(ctx, st, pvc.Spec.VolumeName); err != nil {
			return err
		}
		if pv.Status.Phase != api.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
			return fmt.Errorf("volume %s: %s %+v", pv.Name, pv.Status.Phase, pv.Spec.ClaimRef)
		}
		return nil
	})
	return pvc, pv
}

func TestStaticBindingPicksSmallestFit(t *testing.T) {
	ctx, st, _ := start(t)
	create(t, ctx, st, hostVolume("big", "10Gi", api.ReclaimRetain))
	create(t, ctx, st, hostVolume("small", "1Gi", api.ReclaimRetain))
	create(t, ctx, st, hostVolume("tiny", "100Mi", api.ReclaimRetain))
	testutil.Eventually(t, 5*time.Second, func() error {
		pv, err := getVolume(ctx, st, "tiny")
		if err != nil || pv.Status.Phase != api.VolumeAvailable {
			return fmt.Errorf("tiny: %v %+v", err, pv)
		}
		return nil
	})
	create(t, ctx, st, claim("data", "", "500Mi"))
	pvc, pv := waitBound(t, ctx, st, "data")
	if pv.Name != "small" {
		t.Fatalf("bound to %s, want small (the smallest that fits)", pv.Name)
	}
	if q := pvc.Status.Capacity[api.ResourceStorage]; q.String() != "1Gi" {
		t.Fatalf("claim capacity %s", q.String())
	}
	// A claim no volume fits stays Pending.
	create(t, ctx, st, claim("huge", "", "1Ti"))
	time.Sleep(50 * time.Millisecond)
	if p := getClaim(t, ctx, st, "huge"); p.Status.Phase != api.ClaimPending || p.Spec.VolumeName != "" {
		t.Fatalf("huge: %+v", p.Status)
	}
}

func TestPreBoundVolume(t *testing.T) {
	ctx, st, _ := start(t)
	pv := hostVolume("mine", "10Gi", api.ReclaimRetain)
	pv.Spec.ClaimRef = &api.ObjectReference{Namespace: "default", Name: "data"}
	create(t, ctx, st, pv)
	create(t, ctx, st, hostVolume("other", "1Gi", api.ReclaimRetain))
	create(t, ctx, st, claim("data", "", "1Gi"))
	if _, got := waitBound(t, ctx, st, "data"); got.Name != "mine" {
		t.Fatalf("bound to %s, want the pre-bound volume", got.Name)
	}
}

func TestWaitForFirstConsumerProvisionsOnSelectedNode(t *testing.T) {
	ctx, st, d := start(t)
	create(t, ctx, st, api.LocalStorageClass())
	create(t, ctx, st, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1", Annotations: map[string]string{api.AnnotationVolumesDir: "/data/kyb/volumes"}}})
	create(t, ctx, st, claim("data", "-", "1Gi")) // no class: the default (local) is given
	testutil.Eventually(t, 5*time.Second, func() error {
		if c := getClaim(t, ctx, st, "data"); c.ClassName() != api.LocalStorageClassName {
			return fmt.Errorf("class %q", c.ClassName())
		}
		return nil
	})
	time.Sleep(50 * time.Millisecond)
	if c := getClaim(t, ctx, st, "data"); c.Status.Phase != api.ClaimPending || c.Spec.VolumeName != "" {
		t.Fatalf("a WaitForFirstConsumer claim bound before a pod was scheduled: %+v", c)
	}
	// The scheduler's choice.
	c := getClaim(t, ctx, st, "data")
	c.Annotations = map[string]string{api.AnnotationSelectedNode: "n1"}
	if err := st.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	pvc, pv := waitBound(t, ctx, st, "data")
	if pv.Name != "pvc-"+pvc.UID || pv.NodeName() != "n1" || pv.Spec.Local.Path != "/data/kyb/volumes/"+pv.Name ||
		pv.Spec.PersistentVolumeReclaimPolicy != api.ReclaimDelete || pv.Annotations[api.AnnotationProvisionedBy] != api.LocalProvisioner {
		t.Fatalf("provisioned %+v", pv)
	}

	// Delete: a pod still using the claim holds the directory back.
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "user", Namespace: "default"}, Spec: api.PodSpec{
		NodeName:   "n1",
		Volumes:    []api.Volume{{Name: "d", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
		Containers: []api.Container{{Name: "c", Image: "busybox:1"}},
	}}
	create(t, ctx, st, pod)
	d.mu.Lock()
	d.fail = true // and the node is away at first
	d.mu.Unlock()
	if _, err := st.Delete(ctx, pvcKind, "default", "data", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		v, err := getVolume(ctx, st, pv.Name)
		if err != nil || v.Status.Phase != api.VolumeReleased {
			return fmt.Errorf("volume: %v %+v", err, v)
		}
		return nil
	})
	time.Sleep(50 * time.Millisecond)
	if len(d.calls()) != 0 {
		t.Fatalf("directory deleted under a running pod: %v", d.calls())
	}
	if _, err := st.Delete(ctx, podKind, "default", "user", ""); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.fail = false
	d.mu.Unlock()
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, err := getVolume(ctx, st, pv.Name); !api.IsNotFound(err) {
			return fmt.Errorf("volume still there: %v", err)
		}
		return nil
	})
	if got := d.calls(); len(got) != 1 || got[0] != "n1:/data/kyb/volumes/"+pv.Name {
		t.Fatalf("deleter calls %v", got)
	}
}

func TestRetainKeepsReleasedVolume(t *testing.T) {
	ctx, st, d := start(t)
	create(t, ctx, st, hostVolume("keep", "1Gi", api.ReclaimRetain))
	create(t, ctx, st, claim("data", "", "1Gi"))
	_, pv := waitBound(t, ctx, st, "data")
	if _, err := st.Delete(ctx, pvcKind, "default", "data", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		v, err := getVolume(ctx, st, pv.Name)
		if err != nil || v.Status.Phase != api.VolumeReleased {
			return fmt.Errorf("volume: %v %+v", err, v)
		}
		return nil
	})
	// A new claim of the same name does not get the released volume (its
	// data belongs to the old claim until an admin frees it).
	create(t, ctx, st, claim("data", "", "1Gi"))
	time.Sleep(100 * time.Millisecond)
	if c := getClaim(t, ctx, st, "data"); c.Status.Phase != api.ClaimPending {
		t.Fatalf("a released Retain volume was bound again: %+v", c)
	}
	if len(d.calls()) != 0 {
		t.Fatalf("Retain deleted the directory: %v", d.calls())
	}
}

// A Delete volume of a node that is gone cannot be deleted: Failed, and
// nothing asked.
func TestDeleteOnGoneNodeFails(t *testing.T) {
	ctx, st, d := start(t)
	create(t, ctx, st, api.LocalStorageClass())
	c := claim("data", api.LocalStorageClassName, "1Gi")
	c.Annotations = map[string]string{api.AnnotationSelectedNode: "gone"}
	create(t, ctx, st, c)
	_, pv := waitBound(t, ctx, st, "data")
	if _, err := st.Delete(ctx, pvcKind, "default", "data", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		v, err := getVolume(ctx, st, pv.Name)
		if err != nil || v.Status.Phase != api.VolumeFailed || v.Status.Message == "" {
			return fmt.Errorf("volume: %v %+v", err, v)
		}
		return nil
	})
	if len(d.calls()) != 0 {
		t.Fatalf("asked a node that does not exist: %v", d.calls())
	}
}

func TestDeleteOfHandMadeVolumeFails(t *testing.T) {
	ctx, st, d := start(t)
	create(t, ctx, st, hostVolume("manual", "1Gi", api.ReclaimDelete))
	create(t, ctx, st, claim("data", "", "1Gi"))
	waitBound(t, ctx, st, "data")
	if _, err := st.Delete(ctx, pvcKind, "default", "data", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		v, err := getVolume(ctx, st, "manual")
		if err != nil || v.Status.Phase != api.VolumeFailed || v.Status.Message == "" {
			return fmt.Errorf("volume: %v %+v", err, v)
		}
		return nil
	})
	if len(d.calls()) != 0 {
		t.Fatalf("deleted a directory the provisioner did not make: %v", d.calls())
	}
}
