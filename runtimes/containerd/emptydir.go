package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"

	"github.com/kybernetes/kybernetes/runtimes"
)

// emptyDirRecord is what a sandbox record keeps of an emptyDir volume that
// the runtime backs or watches.
type emptyDirRecord struct {
	Path   string `json:"path"`
	Volume string `json:"volume,omitempty"`
	// Tmpfs says the runtime mounted a tmpfs on Path (unmounted with the sandbox).
	Tmpfs bool `json:"tmpfs,omitempty"`
	// LimitBytes is the sizeLimit of a disk emptyDir, measured by watchEmptyDirs.
	LimitBytes int64 `json:"limitBytes,omitempty"`
}

// prepareEmptyDirs backs the emptyDir volumes of a container's mounts the
// first time a container of the sandbox names them: a tmpfs of the size
// limit for medium Memory (nosuid, nodev), ownership by the pod's fsGroup,
// and, for a disk emptyDir with a size limit, a record that watchEmptyDirs
// measures. The sandbox record keeps what was done, so that RemoveSandbox
// undoes it after an agent restart too.
func (r *Runtime) prepareEmptyDirs(sb *sandboxRecord, ms []runtimes.Mount) error {
	r.sbMu.Lock()
	defer r.sbMu.Unlock()
	cur, err := r.readSandbox(sb.ID)
	if err != nil {
		return err
	}
	changed := false
	for _, m := range ms {
		ed := m.EmptyDir
		if ed == nil {
			continue
		}
		path := filepath.Clean(m.HostPath)
		if cur.emptyDir(path) != nil {
			continue
		}
		rec := emptyDirRecord{Path: path, Volume: m.Volume}
		switch ed.Medium {
		case "":
			rec.LimitBytes = ed.SizeLimitBytes
		case runtimes.MediumMemory:
			opts := "mode=0777"
			if ed.SizeLimitBytes > 0 {
				opts += ",size=" + strconv.FormatInt(ed.SizeLimitBytes, 10)
			}
			if err := unix.Mount("tmpfs", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
				return fmt.Errorf("emptyDir %q: mount tmpfs on %s: %w", m.Volume, path, err)
			}
			rec.Tmpfs = true
		default:
			return fmt.Errorf("emptyDir %q: medium %q is not supported", m.Volume, ed.Medium)
		}
		if ed.GID != nil {
			if err := os.Chown(path, -1, int(*ed.GID)); err != nil {
				return fmt.Errorf("emptyDir %q: give it to fsGroup %d: %w", m.Volume, *ed.GID, err)
			}
			if err := os.Chmod(path, 0o777|os.ModeSetgid); err != nil {
				return fmt.Errorf("emptyDir %q: %w", m.Volume, err)
			}
		}
		if rec.Tmpfs || rec.LimitBytes > 0 {
			cur.EmptyDirs = append(cur.EmptyDirs, rec)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := r.writeSandbox(cur); err != nil {
		// A tmpfs mounted above is not recorded: take it down again.
		for _, e := range cur.EmptyDirs {
			if e.Tmpfs && sb.emptyDir(e.Path) == nil {
				unmount(e.Path)
			}
		}
		return fmt.Errorf("record emptyDir volumes: %w", err)
	}
	*sb = *cur
	return nil
}

func (sb *sandboxRecord) emptyDir(path string) *emptyDirRecord {
	for i := range sb.EmptyDirs {
		if sb.EmptyDirs[i].Path == path {
			return &sb.EmptyDirs[i]
		}
	}
	return nil
}

// unmountEmptyDirs takes down the tmpfs volumes of a sandbox. A path that
// is not (or no longer) a mount point is fine.
func unmountEmptyDirs(sb *sandboxRecord) error {
	var errs []error
	for _, e := range sb.EmptyDirs {
		if e.Tmpfs {
			if err := unmount(e.Path); err != nil {
				errs = append(errs, fmt.Errorf("unmount emptyDir %q at %s: %w", e.Volume, e.Path, err))
			}
		}
	}
	return errors.Join(errs...)
}

func unmount(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// dirUsage returns the bytes a directory tree takes on disk (blocks, as
// du counts them), not following symlinks or crossing into other
// filesystems.
func dirUsage(root string) (int64, error) {
	var rootDev uint64
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if p == root {
			rootDev = st.Dev
		} else if st.Dev != rootDev {
			return filepath.SkipDir
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// watchEmptyDirs measures, every Config.EmptyDirCheckInterval, each disk
// emptyDir with a size limit, as the kubelet's eviction manager does, and
// kills the containers of a sandbox whose volume passed its limit; they exit
// with reason runtimes.ReasonEmptyDirSizeLimit. The pod's restart policy
// then applies: a restarted container that finds the volume still too big is
// killed again, so the pod ends in CrashLoopBackOff showing that reason
// (the kubelet evicts the whole pod instead).
func (r *Runtime) watchEmptyDirs(ctx context.Context) {
	t := time.NewTicker(r.cfg.EmptyDirCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.checkEmptyDirs(ctx)
	}
}

// checkEmptyDirs is one round of watchEmptyDirs.
func (r *Runtime) checkEmptyDirs(ctx context.Context) {
	ents, err := os.ReadDir(filepath.Join(r.cfg.StateDir, "sandboxes"))
	if err != nil {
		return
	}
	for _, e := range ents {
		sb, err := r.readSandbox(e.Name())
		if err != nil {
			continue
		}
		for _, ed := range sb.EmptyDirs {
			if ed.LimitBytes <= 0 {
				continue
			}
			used, err := dirUsage(ed.Path)
			if err != nil || used <= ed.LimitBytes {
				continue
			}
			msg := fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %d bytes (%d bytes used)", ed.Volume, ed.LimitBytes, used)
			r.log.Warn("emptyDir over its size limit; killing the pod's containers", "pod", sb.Namespace+"/"+sb.Name, "volume", ed.Volume, "limit", ed.LimitBytes, "used", used)
			r.killForEmptyDir(ctx, sb.ID, msg)
			break
		}
	}
}

// killForEmptyDir kills the running containers of a sandbox, recording why.
func (r *Runtime) killForEmptyDir(ctx context.Context, sandboxID, msg string) {
	ctx = r.ns(ctx)
	cs, err := r.containersOf(ctx, sandboxID)
	if err != nil {
		return
	}
	for _, c := range cs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != cclient.Running {
			continue
		}
		r.oomMu.Lock()
		r.evicted[c.ID()] = msg
		r.oomMu.Unlock()
		if err := task.Kill(ctx, syscall.SIGKILL, cclient.WithKillAll); err != nil {
			r.log.Warn("kill container over its emptyDir limit", "container", c.ID(), "err", err)
		}
	}
}

// evictedFor returns the message of a container killed by killForEmptyDir, or "".
func (r *Runtime) evictedFor(id string) string {
	r.oomMu.Lock()
	defer r.oomMu.Unlock()
	return r.evicted[id]
}
