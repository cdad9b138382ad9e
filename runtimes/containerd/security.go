package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kybernetes/kybernetes/runtimes"
)

// errRunAsRoot is the error of a container that must not run as root
// but whose effective uid is 0.
var errRunAsRoot = errors.New("runAsNonRoot is set but the container would run as uid 0 (set runAsUser, or a non-root USER in the image)")

// securityOpts maps a container's Security onto its OCI spec, after the
// image config and the Kubernetes command have been applied. The order
// matters: the user first (runAsNonRoot checks the final uid), then
// capabilities, then seccomp (the default profile allows syscalls by the
// capabilities the process holds), then what privileged overrides.
func (r *Runtime) securityOpts(sec *runtimes.Security) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if sec.RunAsUser != nil {
		opts = append(opts, oci.WithUserID(uint32(*sec.RunAsUser)))
	}
	if sec.RunAsGroup != nil {
		gid := uint32(*sec.RunAsGroup)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			// The image's primary group is no longer one of the process's.
			old := s.Process.User.GID
			s.Process.User.GID = gid
			gids := s.Process.User.AdditionalGids[:0]
			for _, g := range s.Process.User.AdditionalGids {
				if g != old {
					gids = append(gids, g)
				}
			}
			if !slices.Contains(gids, gid) {
				gids = append([]uint32{gid}, gids...)
			}
			s.Process.User.AdditionalGids = gids
			return nil
		})
	}
	if len(sec.SupplementalGroups) > 0 {
		groups := sec.SupplementalGroups
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			for _, g := range groups {
				if !slices.Contains(s.Process.User.AdditionalGids, uint32(g)) {
					s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
				}
			}
			return nil
		})
	}
	if sec.RunAsNonRoot {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Process.User.UID == 0 {
				return errRunAsRoot
			}
			return nil
		})
	}
	// Capabilities, the way containerd's CRI plugin applies them.
	if slices.Contains(sec.CapAdd, "ALL") {
		opts = append(opts, oci.WithAllKnownCapabilities)
	}
	if slices.Contains(sec.CapDrop, "ALL") {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	if add := capNames(sec.CapAdd); len(add) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(add))
	}
	if drop := capNames(sec.CapDrop); len(drop) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(drop))
	}
	if sec.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if sec.HostIPC {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	if len(sec.Sysctls) > 0 {
		sysctls := sec.Sysctls
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			for k, v := range sysctls {
				s.Linux.Sysctl[strings.ReplaceAll(k, "/", ".")] = v
			}
			return nil
		})
	}
	if sec.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	// As Kubernetes: no_new_privs only when allowPrivilegeEscalation is
	// false (containerd's default spec sets it always; setuid programs of
	// images would then not work where Kubernetes lets them).
	nnp := sec.NoNewPrivileges
	opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.NoNewPrivileges = nnp
		return nil
	})
	if sec.Privileged {
		// As the CRI plugin: every capability and device, no seccomp, no
		// masked or read-only paths, writable sysfs and cgroupfs.
		return append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed), nil
	}
	if sec.ProcMountUnmasked {
		opts = append(opts, oci.WithMaskedPaths(nil), oci.WithReadonlyPaths(nil))
	}
	switch sec.Seccomp {
	case "", runtimes.SeccompRuntimeDefault:
		opts = append(opts, seccomp.WithDefaultProfile())
	case runtimes.SeccompUnconfined:
		opts = append(opts, oci.WithSeccompUnconfined)
	case runtimes.SeccompLocalhost:
		if !filepath.IsLocal(sec.SeccompProfile) {
			return nil, fmt.Errorf("seccomp profile %q: must be a path beneath %s", sec.SeccompProfile, r.cfg.SeccompProfileDir)
		}
		p := filepath.Join(r.cfg.SeccompProfileDir, sec.SeccompProfile)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
		opts = append(opts, seccomp.WithProfile(p))
	default:
		return nil, fmt.Errorf("seccomp profile type %q is not supported", sec.Seccomp)
	}
	return opts, nil
}

// capNames returns the single capability names of a list with their CAP_
// prefix, leaving out ALL.
func capNames(caps []string) []string {
	var out []string
	for _, c := range caps {
		if c == "ALL" {
			continue
		}
		out = append(out, "CAP_"+strings.ToUpper(strings.TrimPrefix(c, "CAP_")))
	}
	return out
}
