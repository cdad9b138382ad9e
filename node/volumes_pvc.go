package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// volumesDir is where the volumes the local provisioner makes for this
// node live: <data dir>/volumes/<volume name>.
func (a *Agent) volumesDir() string { return filepath.Join(a.cfg.DataDir, "volumes") }

// localVolumePath returns the directory of a volume the local provisioner
// made for this node, and whether pv is one: provisioned by kyb.dev/local,
// pinned to this node, its path exactly <volumes dir>/<its name>. A volume
// that claims to be provisioned but names any other path is refused, so
// no volume object can make the agent create or delete another directory.
func (a *Agent) localVolumePath(pv *api.PersistentVolume) (string, bool, error) {
	if pv.Annotations[api.AnnotationProvisionedBy] != api.LocalProvisioner {
		return "", false, nil
	}
	if pv.Spec.Local == nil || pv.NodeName() != a.cfg.Name {
		return "", true, fmt.Errorf("volume %s: provisioned by %s but not a local volume of node %s", pv.Name, api.LocalProvisioner, a.cfg.Name)
	}
	if msgs := validation.IsDNS1123Subdomain(pv.Name); len(msgs) > 0 {
		return "", true, fmt.Errorf("volume %q: invalid name", pv.Name)
	}
	want := filepath.Join(a.volumesDir(), pv.Name)
	if pv.Spec.Local.Path != want {
		return "", true, fmt.Errorf("volume %s: path %q is not this node's %q", pv.Name, pv.Spec.Local.Path, want)
	}
	return want, true, nil
}

// pvcMount resolves a persistentVolumeClaim volume of pod to a mount of
// the host directory of the volume bound to the claim. The control plane
// answers only for a pod bound to this node that names the claim, and
// only with the claim's volume; the agent checks again that the volume is
// for this node. A provisioned directory is made on first use; any other
// local path must exist. An unbound claim is an error the worker retries
// (CreateContainerConfigError) until the binder is done.
func (w *podWorker) pvcMount(pod *api.Pod, vol *api.Volume, m api.VolumeMount) (runtimes.Mount, error) {
	src := vol.PersistentVolumeClaim
	ctx, cancel := context.WithTimeout(w.a.ctx, w.a.cfg.RequestTimeout)
	defer cancel()
	var pv api.PersistentVolume
	req := api.VolumeRequest{Namespace: pod.Namespace, Pod: pod.Name, UID: pod.UID, Claim: src.ClaimName}
	if err := w.a.request(ctx, api.NodeVerbVolume, req, &pv); err != nil {
		return runtimes.Mount{}, fmt.Errorf("volume %q: persistentvolumeclaim %q: %w", vol.Name, src.ClaimName, err)
	}
	if r := pv.Spec.ClaimRef; r == nil || r.Namespace != pod.Namespace || r.Name != src.ClaimName {
		return runtimes.Mount{}, fmt.Errorf("volume %q: volume %s is not bound to claim %s", vol.Name, pv.Name, src.ClaimName)
	}
	if a := pv.Spec.NodeAffinity; a != nil {
		w.a.nodeMu.Lock()
		self := api.Node{ObjectMeta: api.ObjectMeta{Name: w.a.cfg.Name, Labels: w.a.node.Labels}}
		w.a.nodeMu.Unlock()
		if !a.Required.Matches(&self) {
			return runtimes.Mount{}, fmt.Errorf("volume %q: volume %s cannot be used from node %s (its nodeAffinity)", vol.Name, pv.Name, w.a.cfg.Name)
		}
	}
	dir, provisioned, err := w.a.localVolumePath(&pv)
	if err != nil {
		return runtimes.Mount{}, fmt.Errorf("volume %q: %w", vol.Name, err)
	}
	switch {
	case provisioned:
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return runtimes.Mount{}, fmt.Errorf("volume %q: create the directory of volume %s: %w", vol.Name, pv.Name, err)
		}
		_ = os.Chmod(dir, 0o777) // as an emptyDir: any user of the pod may write
	case pv.Spec.Local != nil:
		dir = pv.Spec.Local.Path
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return runtimes.Mount{}, fmt.Errorf("volume %q: local volume %s: path %q is not a directory on node %s", vol.Name, pv.Name, dir, w.a.cfg.Name)
		}
	case pv.Spec.HostPath != nil:
		dir = pv.Spec.HostPath.Path
		switch pv.Spec.HostPath.Type {
		case "", "DirectoryOrCreate":
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return runtimes.Mount{}, fmt.Errorf("volume %q: create hostPath %q of volume %s: %w", vol.Name, dir, pv.Name, err)
			}
		default:
			if _, err := os.Stat(dir); err != nil {
				return runtimes.Mount{}, fmt.Errorf("volume %q: hostPath %q of volume %s: %w", vol.Name, dir, pv.Name, err)
			}
		}
	default:
		return runtimes.Mount{}, fmt.Errorf("volume %q: volume %s has no source this node can mount (local, hostPath)", vol.Name, pv.Name)
	}
	return runtimes.Mount{HostPath: dir, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly || src.ReadOnly, Volume: vol.Name}, nil
}

// subscribeVolumeDelete serves the control plane's requests to remove the
// directory of a provisioned volume of this node (its claim is gone and
// its reclaim policy is Delete).
func (a *Agent) subscribeVolumeDelete() (*nats.Subscription, error) {
	sub, err := a.nc.Subscribe(api.AgentSubject(a.cfg.Name, api.AgentVerbVolumeDelete), a.onVolumeDelete)
	if err != nil {
		return nil, fmt.Errorf("subscribe to volume deletions: %w", err)
	}
	return sub, nil
}

func (a *Agent) onVolumeDelete(m *nats.Msg) {
	var pv api.PersistentVolume
	if err := json.Unmarshal(m.Data, &pv); err != nil {
		a.log.Warn("volume deletion: decode", "err", err)
		return
	}
	dir, provisioned, err := a.localVolumePath(&pv)
	switch {
	case err != nil:
		a.log.Warn("volume deletion refused", "volume", pv.Name, "err", err)
		return
	case !provisioned:
		a.log.Warn("volume deletion refused: not provisioned by "+api.LocalProvisioner, "volume", pv.Name)
		return
	}
	a.wg.Go(func() {
		if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("delete volume directory", "volume", pv.Name, "err", err)
			return
		}
		a.log.Info("deleted volume directory", "volume", pv.Name, "path", dir)
		if err := a.request(a.ctx, api.NodeVerbVolumeDeleted, api.VolumeDeleted{Name: pv.Name, UID: pv.UID}, nil); err != nil {
			a.log.Warn("report volume deleted", "volume", pv.Name, "err", err)
		}
	})
}
