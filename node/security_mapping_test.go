package node

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// The worker hands the pod's and the container's securityContext, the host
// namespaces and the emptyDir settings to the runtime: nothing is dropped.
func TestSecurityMappedToRuntime(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	got := map[string]*runtimes.ContainerConfig{}
	var sbc *runtimes.SandboxConfig
	h.fake.SetHooks(fake.Hooks{
		CreateSandbox: func(_ context.Context, cfg *runtimes.SandboxConfig) error {
			mu.Lock()
			defer mu.Unlock()
			sbc = cfg
			return nil
		},
		CreateContainer: func(_ context.Context, _ string, cfg *runtimes.ContainerConfig) error {
			mu.Lock()
			defer mu.Unlock()
			got[cfg.Name] = cfg
			return nil
		},
	})
	h.start()
	p := mkpod("sec", api.RestartPolicyNever, "fake://exit/0", "fake://exit/0")
	p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true
	p.Spec.SecurityContext = &api.PodSecurityContext{
		RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(1500)), RunAsNonRoot: ptr(true),
		FSGroup: ptr(int64(2000)), SupplementalGroups: []int64{3000},
		SeccompProfile: &api.SeccompProfile{Type: api.SeccompProfileLocalhost, LocalhostProfile: ptr("p.json")},
		Sysctls:        []api.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}},
	}
	p.Spec.Containers[0].SecurityContext = &api.SecurityContext{
		RunAsUser: ptr(int64(1001)), RunAsNonRoot: ptr(false),
		Capabilities:             &api.Capabilities{Drop: []api.Capability{"ALL"}, Add: []api.Capability{"NET_BIND_SERVICE"}},
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		SeccompProfile:           &api.SeccompProfile{Type: api.SeccompProfileRuntimeDefault},
		ProcMount:                ptr(api.ProcMountUnmasked),
	}
	p.Spec.Containers[1].SecurityContext = &api.SecurityContext{Privileged: ptr(true)}
	p.Spec.Volumes = []api.Volume{{Name: "mem", EmptyDir: &api.EmptyDirVolumeSource{Medium: api.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("1Mi"))}}}
	p.Spec.Containers[1].VolumeMounts = []api.VolumeMount{{Name: "mem", MountPath: "/mem"}}
	p = h.cp.assign(p)
	testutil.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < 2 {
			return fmt.Errorf("%d containers created", len(got))
		}
		return nil
	})
	mu.Lock()
	c0, c1 := got["c0"], got["c1"]
	mu.Unlock()
	want0 := runtimes.Security{
		RunAsUser: ptr(int64(1001)), RunAsGroup: ptr(int64(1500)), RunAsNonRoot: false,
		SupplementalGroups: []int64{3000, 2000}, ReadOnlyRootFilesystem: true,
		CapAdd: []string{"NET_BIND_SERVICE"}, CapDrop: []string{"ALL"}, NoNewPrivileges: true,
		Seccomp: "RuntimeDefault", ProcMountUnmasked: true, HostPID: true, HostIPC: true,
		Sysctls: map[string]string{"net.ipv4.tcp_syncookies": "1"},
	}
	if !reflect.DeepEqual(c0.Security, want0) {
		t.Errorf("c0 security:\n got %+v\nwant %+v", c0.Security, want0)
	}
	want1 := runtimes.Security{
		Privileged: true, RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(1500)), RunAsNonRoot: true,
		SupplementalGroups: []int64{3000, 2000}, Seccomp: "Localhost", SeccompProfile: "p.json",
		HostPID: true, HostIPC: true, Sysctls: map[string]string{"net.ipv4.tcp_syncookies": "1"},
	}
	if !reflect.DeepEqual(c1.Security, want1) {
		t.Errorf("c1 security:\n got %+v\nwant %+v", c1.Security, want1)
	}
	// The volume, then the termination message file (node/termination.go).
	if len(c1.Mounts) != 2 || c1.Mounts[1].ContainerPath != api.DefaultTerminationMessagePath ||
		c1.Mounts[0].Volume != "mem" || c1.Mounts[0].EmptyDir == nil ||
		!reflect.DeepEqual(*c1.Mounts[0].EmptyDir, runtimes.EmptyDir{Medium: runtimes.MediumMemory, SizeLimitBytes: 1 << 20, GID: ptr(int64(2000))}) {
		t.Errorf("c1 mounts = %+v", c1.Mounts)
	}
	mu.Lock()
	defer mu.Unlock()
	if sbc == nil || !sbc.HostNetwork || sbc.UID != p.UID {
		t.Errorf("sandbox config = %+v, want HostNetwork", sbc)
	}
}
