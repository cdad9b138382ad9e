package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// volumeFile is one file of a configMap, secret, downwardAPI or projected
// volume.
type volumeFile struct {
	data []byte
	mode fs.FileMode
	// gid, when set (the pod's fsGroup), owns the file.
	gid *int64
}

// isConfigVolume reports whether v is written by the agent from the API.
func isConfigVolume(v *api.Volume) bool {
	return v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
}

// holdsSecrets reports whether v holds a Secret's values: those volumes
// are backed by a tmpfs, as the kubelet's.
func holdsSecrets(v *api.Volume) bool {
	if v.Secret != nil {
		return true
	}
	if v.Projected != nil {
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				return true
			}
		}
	}
	return false
}

func hasDownwardVolume(p *api.Pod) bool {
	for i := range p.Spec.Volumes {
		if v := &p.Spec.Volumes[i]; v.DownwardAPI != nil || v.Projected != nil {
			return true
		}
	}
	return false
}

func fileMode(m *int32, def fs.FileMode) fs.FileMode {
	if m == nil {
		return def
	}
	return fs.FileMode(*m) & fs.ModePerm
}

// keyFiles adds the keys of a ConfigMap or Secret to files: every key, or
// only items. A missing object or item key is an error naming it, unless
// optional (then what exists is written).
func (w *podWorker) keyFiles(ctx context.Context, files map[string]volumeFile, kind, ns, name string, items []api.KeyToPath, optional bool, mode fs.FileMode) error {
	data, err := w.configData(ctx, kind, ns, name)
	if err != nil {
		if optional && isConfigNotFound(err) {
			return nil
		}
		return err
	}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = volumeFile{data: v, mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("couldn't find key %s in %s %s/%s: %w", it.Key, kind, ns, name, errConfigNotFound)
		}
		files[it.Path] = volumeFile{data: v, mode: fileMode(it.Mode, mode)}
	}
	return nil
}

func (w *podWorker) downwardFiles(pod *api.Pod, files map[string]volumeFile, items []api.DownwardAPIVolumeFile, mode fs.FileMode) error {
	for _, it := range items {
		var (
			v   string
			err error
		)
		switch {
		case it.FieldRef != nil:
			v, err = w.podFieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = w.resourceFieldValue(pod, nil, it.ResourceFieldRef)
		}
		if err != nil {
			return fmt.Errorf("downwardAPI %s: %w", it.Path, err)
		}
		files[it.Path] = volumeFile{data: []byte(v), mode: fileMode(it.Mode, mode)}
	}
	return nil
}

// volumePayload computes the files of a configMap, secret, downwardAPI or
// projected volume.
func (w *podWorker) volumePayload(ctx context.Context, pod *api.Pod, v *api.Volume) (map[string]volumeFile, error) {
	files := map[string]volumeFile{}
	def := fs.FileMode(api.DefaultVolumeMode)
	var err error
	switch {
	case v.ConfigMap != nil:
		s := v.ConfigMap
		err = w.keyFiles(ctx, files, "ConfigMap", pod.Namespace, s.Name, s.Items, api.IsOptional(s.Optional), fileMode(s.DefaultMode, def))
	case v.Secret != nil:
		s := v.Secret
		err = w.keyFiles(ctx, files, "Secret", pod.Namespace, s.SecretName, s.Items, api.IsOptional(s.Optional), fileMode(s.DefaultMode, def))
	case v.DownwardAPI != nil:
		err = w.downwardFiles(pod, files, v.DownwardAPI.Items, fileMode(v.DownwardAPI.DefaultMode, def))
	case v.Projected != nil:
		mode := fileMode(v.Projected.DefaultMode, def)
		for _, src := range v.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				s := src.ConfigMap
				err = w.keyFiles(ctx, files, "ConfigMap", pod.Namespace, s.Name, s.Items, api.IsOptional(s.Optional), mode)
			case src.Secret != nil:
				s := src.Secret
				err = w.keyFiles(ctx, files, "Secret", pod.Namespace, s.Name, s.Items, api.IsOptional(s.Optional), mode)
			case src.DownwardAPI != nil:
				err = w.downwardFiles(pod, files, src.DownwardAPI.Items, mode)
			default:
				err = errors.New("projected source not supported")
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("volume %q: %w", v.Name, err)
	}
	// As the kubelet's SetVolumeOwnership: with an fsGroup the files are
	// the group's and group-readable, so a non-root container can read
	// them whatever their mode.
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		for p, f := range files {
			f.mode |= 0o440
			f.gid = sc.FSGroup
			files[p] = f
		}
	}
	return files, nil
}

// configVolumeMount writes (or refreshes) the files of a configMap, secret,
// downwardAPI or projected volume under the pod's directory and returns
// its read-only mount.
func (w *podWorker) configVolumeMount(ctx context.Context, pod *api.Pod, v *api.Volume, m api.VolumeMount) (runtimes.Mount, error) {
	dir, err := w.a.podPath(pod.UID, "volumes", v.Name)
	if err != nil {
		return runtimes.Mount{}, fmt.Errorf("volume %q: %w", v.Name, err)
	}
	files, err := w.volumePayload(ctx, pod, v)
	if err != nil {
		return runtimes.Mount{}, err
	}
	if holdsSecrets(v) {
		ok, err := mountSecretTmpfs(dir)
		if err != nil {
			return runtimes.Mount{}, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		if !ok {
			w.log.Warn("no tmpfs for a secret volume (the agent may not mount): its files are on the node's disk", "volume", v.Name)
		}
	}
	if _, err := writeAtomic(dir, files); err != nil {
		return runtimes.Mount{}, fmt.Errorf("volume %q: %w", v.Name, err)
	}
	// As Kubernetes: these volumes are always mounted read-only.
	return runtimes.Mount{HostPath: dir, ContainerPath: m.MountPath, ReadOnly: true, Volume: v.Name}, nil
}

// refreshConfigVolumes rewrites the configMap, secret, downwardAPI and
// projected volumes of the pod that were written before (their files
// change in place, without a restart, as the kubelet's). A failure keeps
// the files as they were and is logged; the next change or resync tries
// again.
func (w *podWorker) refreshConfigVolumes(ctx context.Context, pod *api.Pod) {
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !isConfigVolume(v) {
			continue
		}
		dir, err := w.a.podPath(pod.UID, "volumes", v.Name)
		if err != nil {
			continue
		}
		if _, err := os.Lstat(dir + "/" + dataDirName); err != nil {
			continue // not written yet: the container's start writes it
		}
		files, err := w.volumePayload(ctx, pod, v)
		if err != nil {
			w.log.Info("volume not refreshed", "volume", v.Name, "err", err)
			continue
		}
		changed, err := writeAtomic(dir, files)
		if err != nil {
			w.log.Warn("volume not refreshed", "volume", v.Name, "err", err)
		} else if changed {
			w.log.Info("volume updated", "volume", v.Name)
		}
	}
}

// configChanged tells the worker that a ConfigMap or Secret its pod
// references changed (or that it should look again). It never blocks.
func (w *podWorker) configChanged() {
	w.mu.Lock()
	w.cfgDirty = true
	w.mu.Unlock()
	signal(w.notify)
}

// applyConfigChanges runs on the worker's goroutine at each sync: after a
// config change, or a change of the pod's labels or annotations when it
// has downwardAPI files, its volumes are refreshed; after a config change,
// a container that waits for a missing ConfigMap, Secret or key, or whose
// pull failed while the pod has pull secrets, is tried again at once.
func (w *podWorker) applyConfigChanges(ctx context.Context, pod *api.Pod) {
	w.mu.Lock()
	dirty := w.cfgDirty
	w.cfgDirty = false
	w.mu.Unlock()
	meta := ""
	if hasDownwardVolume(pod) {
		meta = formatMap(pod.Labels) + "\x00" + formatMap(pod.Annotations)
	}
	if !dirty && meta == w.cfgMeta {
		return
	}
	w.cfgMeta = meta
	w.refreshConfigVolumes(ctx, pod)
	if !dirty {
		return
	}
	for _, c := range w.all() {
		if !c.running && c.waitR == runtimes.ReasonCreateContainerConfigError {
			c.crash = backoff{}
		}
		// A pull that failed may have lacked a pull secret that now exists.
		if !c.imageOK && len(pod.Spec.ImagePullSecrets) > 0 {
			c.pull = backoff{}
		}
	}
}

// dataDirName is the symlink to the current payload directory, as the
// kubelet's atomic writer names it.
const dataDirName = "..data"

// writeAtomic writes files beneath dir the way the kubelet's atomic
// writer does, so that a reader never sees a mix of two versions:
//
//	dir/..2026_11_29_06_30_00.123456789/<files>   the payload
//	dir/..data -> ..2026_11_29_06_30_00.123456789 swapped by rename(2)
//	dir/<top-level name> -> ..data/<top-level name>
//
// It reports whether anything changed; an unchanged payload writes
// nothing. Every path is resolved beneath dir (os.Root), so neither a
// hostile key nor a planted symlink writes outside it.
func writeAtomic(dir string, files map[string]volumeFile) (bool, error) {
	for p := range files {
		if err := checkVolumePath(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false, err
	}
	defer root.Close()
	old, _ := root.Readlink(dataDirName)
	if old != "" && sameFiles(root, old, files) {
		return false, nil
	}
	ts := ".." + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	for i := 0; ; i++ {
		name := ts
		if i > 0 {
			name = fmt.Sprintf("%s.%d", ts, i)
		}
		if err := root.Mkdir(name, 0o755); err == nil {
			ts = name
			break
		} else if !errors.Is(err, fs.ErrExist) || i > 100 {
			return false, err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		f := files[p]
		fp := ts + "/" + p
		if d := path.Dir(fp); d != ts {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return false, err
			}
		}
		if err := root.WriteFile(fp, f.data, f.mode); err != nil {
			return false, err
		}
		if err := root.Chmod(fp, f.mode); err != nil { // beyond the umask
			return false, err
		}
		if f.gid != nil {
			if err := root.Lchown(fp, -1, int(*f.gid)); err != nil {
				return false, err
			}
		}
	}
	_ = root.Remove(dataDirName + "_tmp")
	if err := root.Symlink(ts, dataDirName+"_tmp"); err != nil {
		return false, err
	}
	if err := root.Rename(dataDirName+"_tmp", dataDirName); err != nil {
		return false, err
	}
	// The top-level names: a symlink each into ..data; names no longer in
	// the payload go.
	top := map[string]bool{}
	for p := range files {
		top[strings.SplitN(p, "/", 2)[0]] = true
	}
	for name := range top {
		if _, err := root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			if err := root.Symlink(dataDirName+"/"+name, name); err != nil {
				return false, err
			}
		}
	}
	if d, err := root.Open("."); err == nil {
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, n := range names {
			if strings.HasPrefix(n, "..") || top[n] {
				continue
			}
			if l, err := root.Readlink(n); err == nil && strings.HasPrefix(l, dataDirName+"/") {
				_ = root.Remove(n)
			}
		}
	}
	if old != "" && old != ts && strings.HasPrefix(old, "..") && !strings.Contains(old, "/") {
		_ = root.RemoveAll(old)
	}
	return true, nil
}

// sameFiles reports whether the payload directory old holds exactly files.
func sameFiles(root *os.Root, old string, files map[string]volumeFile) bool {
	n := 0
	err := fs.WalkDir(root.FS(), old, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		n++
		f, ok := files[strings.TrimPrefix(p, old+"/")]
		if !ok {
			return fs.ErrNotExist
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() != f.mode || (f.gid != nil && !ownedBy(info, *f.gid)) {
			return fs.ErrInvalid
		}
		b, err := root.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.data) {
			return fs.ErrInvalid
		}
		return nil
	})
	return err == nil && n == len(files)
}

// checkVolumePath re-checks a file path of a volume (the apiserver
// validated it): relative, clean, no '..' element, not starting with "..".
func checkVolumePath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "..") || slices.Contains(strings.Split(p, "/"), "..") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("invalid file path %q in a volume", p)
	}
	return nil
}
