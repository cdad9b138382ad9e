package node

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// secretVolumeTmpfsSize bounds the tmpfs of one secret volume: a Secret is
// at most 1 MiB and an update holds two payloads for an instant; a
// projected volume may hold several. tmpfs takes only what is written.
const secretVolumeTmpfsSize = "64m"

// mountSecretTmpfs backs dir with a tmpfs (0755, nosuid, nodev, noexec)
// unless it is a mount point already, so that a Secret's values are never
// written to the node's disk, as the kubelet does. It returns false (and
// the caller writes to the disk) when the agent may not mount.
func mountSecretTmpfs(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, err
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return false, err
	}
	if st.Dev != parent.Dev {
		return true, nil // mounted before (an earlier container, or before an agent restart)
	}
	err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size="+secretVolumeTmpfsSize)
	if errors.Is(err, unix.EPERM) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mount a tmpfs for the secret volume: %w", err)
	}
	return true, nil
}

// unmountBeneath detaches every mount at or beneath dir (the tmpfs of a
// pod's secret volumes, and whatever a runtime left), deepest first, so
// that removing the directory removes nothing through a mount.
func unmountBeneath(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil // no procfs: nothing the agent could have mounted either
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := filepath.Clean(dir) + "/"
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == filepath.Clean(dir) || strings.HasPrefix(p, prefix) {
			points = append(points, p)
		}
	}
	var first error
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) && first == nil {
			first = fmt.Errorf("unmount %s: %w", points[i], err)
		}
	}
	return first
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownedBy reports whether the file's group is gid.
func ownedBy(info os.FileInfo, gid int64) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int64(st.Gid) == gid
}
