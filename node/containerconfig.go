// What a worker asks its runtime to create for a container: the
// runtimes.ContainerConfig built from the pod spec (env, mounts, security,
// ports, pull policy) and where its log goes.

package node

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

func portMapping(p api.ContainerPort) runtimes.PortMapping {
	proto := string(p.Protocol)
	if proto == "" {
		proto = string(api.ProtocolTCP)
	}
	return runtimes.PortMapping{Name: p.Name, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIP: p.HostIP, Protocol: proto}
}

func pullPolicy(p api.PullPolicy) runtimes.PullPolicy {
	switch p {
	case api.PullAlways:
		return runtimes.PullAlways
	case api.PullNever:
		return runtimes.PullNever
	}
	return runtimes.PullIfNotPresent
}

// logPath is where the runtime appends a container attempt's output.
func (w *podWorker) logPath(name string, attempt int32) (string, error) {
	// <pod dir>/<container>.<attempt>.log: one directory per pod (container
	// names hold no dots), as directory creation dominates a pod's start cost.
	return w.a.podPath(w.uid, name+"."+strconv.Itoa(int(attempt))+".log")
}

// containerConfig maps a container of the pod to the runtime's config.
func (w *podWorker) containerConfig(ctx context.Context, pod *api.Pod, c *ctr) (*runtimes.ContainerConfig, error) {
	logPath, err := w.logPath(c.spec.Name, c.attempt)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	cfg := &runtimes.ContainerConfig{
		Name:       c.spec.Name,
		Attempt:    c.attempt,
		Image:      c.spec.Image,
		Command:    c.spec.Command,
		Args:       c.spec.Args,
		WorkingDir: c.spec.WorkingDir,
		Labels:     map[string]string{LabelPodUID: pod.UID, LabelPodNamespace: pod.Namespace, LabelPodName: pod.Name, LabelContainer: c.spec.Name},
		LogPath:    logPath,
		Stdin:      c.spec.Stdin,
		StdinOnce:  c.spec.Stdin && c.spec.StdinOnce,
		TTY:        c.spec.TTY,
	}
	if cfg.Env, err = w.containerEnv(ctx, pod, &c.spec); err != nil {
		return nil, err
	}
	cfg.Command, cfg.Args = expandArgs(c.spec.Command, cfg.Env), expandArgs(c.spec.Args, cfg.Env)
	for _, p := range c.spec.Ports {
		// A wasm container serves each declared port in process (WAGI,
		// for Services and probes), with a listener only for a hostPort.
		if p.HostPort != 0 || w.rtName == api.RuntimeWasm {
			cfg.Ports = append(cfg.Ports, portMapping(p))
		}
	}
	if q, ok := c.spec.Resources.Requests[api.ResourceCPU]; ok {
		cfg.CPURequestMilli = q.MilliValue()
	}
	if q, ok := c.spec.Resources.Limits[api.ResourceCPU]; ok {
		cfg.CPULimitMilli = q.MilliValue()
	}
	if q, ok := c.spec.Resources.Limits[api.ResourceMemory]; ok {
		cfg.MemoryLimitBytes = q.Value()
	}
	cfg.Security = containerSecurity(&pod.Spec, &c.spec)
	var fsGroup *int64
	if pod.Spec.SecurityContext != nil {
		fsGroup = pod.Spec.SecurityContext.FSGroup
	}
	for i, m := range c.spec.VolumeMounts {
		var vol *api.Volume
		for j := range pod.Spec.Volumes {
			if pod.Spec.Volumes[j].Name == m.Name {
				vol = &pod.Spec.Volumes[j]
			}
		}
		switch {
		case vol == nil:
			return nil, fmt.Errorf("volumeMounts[%d]: volume %q not found in spec.volumes", i, m.Name)
		case vol.HostPath != nil:
			cfg.Mounts = append(cfg.Mounts, runtimes.Mount{HostPath: vol.HostPath.Path, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly, Volume: vol.Name})
		case vol.EmptyDir != nil:
			dir, err := w.a.podPath(pod.UID, "volumes", vol.Name)
			if err != nil {
				return nil, fmt.Errorf("volume %q: %w", vol.Name, err)
			}
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %q: create emptyDir: %w", vol.Name, err)
			}
			_ = os.Chmod(dir, 0o777)
			ed := &runtimes.EmptyDir{Medium: vol.EmptyDir.Medium, GID: fsGroup}
			if vol.EmptyDir.SizeLimit != nil {
				ed.SizeLimitBytes = vol.EmptyDir.SizeLimit.Value()
			}
			cfg.Mounts = append(cfg.Mounts, runtimes.Mount{HostPath: dir, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly, Volume: vol.Name, EmptyDir: ed})
		case isConfigVolume(vol):
			mount, err := w.configVolumeMount(ctx, pod, vol, m)
			if err != nil {
				return nil, err
			}
			cfg.Mounts = append(cfg.Mounts, mount)
		case vol.PersistentVolumeClaim != nil:
			mnt, err := w.pvcMount(pod, vol, m)
			if err != nil {
				return nil, err
			}
			cfg.Mounts = append(cfg.Mounts, mnt)
		default:
			return nil, fmt.Errorf("volume %q: no supported source (emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim)", vol.Name)
		}
	}
	if err := w.terminationMount(pod, c, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// containerSecurity maps a container's securityContext, with what it takes
// from the pod's (runAsUser, runAsGroup, runAsNonRoot and seccompProfile
// when the container leaves them unset; supplementalGroups, fsGroup,
// sysctls and the host PID and IPC namespaces), to the runtime's Security.
func containerSecurity(pod *api.PodSpec, c *api.Container) runtimes.Security {
	sec := runtimes.Security{
		Privileged: c.IsPrivileged(),
		RunAsUser:  api.EffectiveRunAsUser(pod, c),
		RunAsGroup: api.EffectiveRunAsGroup(pod, c),
		HostPID:    pod.HostPID,
		HostIPC:    pod.HostIPC,
	}
	if nr := api.EffectiveRunAsNonRoot(pod, c); nr != nil {
		sec.RunAsNonRoot = *nr
	}
	if sp := api.EffectiveSeccompProfile(pod, c); sp != nil {
		sec.Seccomp = string(sp.Type)
		if sp.LocalhostProfile != nil {
			sec.SeccompProfile = *sp.LocalhostProfile
		}
	}
	if psc := pod.SecurityContext; psc != nil {
		sec.SupplementalGroups = append(sec.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			sec.SupplementalGroups = append(sec.SupplementalGroups, *psc.FSGroup)
		}
		if len(psc.Sysctls) > 0 {
			sec.Sysctls = make(map[string]string, len(psc.Sysctls))
			for _, s := range psc.Sysctls {
				sec.Sysctls[s.Name] = s.Value
			}
		}
	}
	if sc := c.SecurityContext; sc != nil {
		sec.ReadOnlyRootFilesystem = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		sec.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
		sec.ProcMountUnmasked = sc.ProcMount != nil && *sc.ProcMount == api.ProcMountUnmasked
		if caps := sc.Capabilities; caps != nil {
			for _, a := range caps.Add {
				sec.CapAdd = append(sec.CapAdd, string(a))
			}
			for _, d := range caps.Drop {
				sec.CapDrop = append(sec.CapDrop, string(d))
			}
		}
	}
	return sec
}
