package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// FS is a wazero file system confined to one host directory. Create it
// with Open; it is safe for concurrent use.
type FS struct {
	experimentalsys.UnimplementedFS // methods added to the interface later fail with ENOSYS

	root     *os.Root
	readOnly bool
}

var _ experimentalsys.FS = (*FS)(nil)

// Open opens dir (which must exist and be a directory) as an FS. When
// readOnly is set every change through the FS fails with EROFS. Close the
// FS when no module uses it any more.
func Open(dir string, readOnly bool) (*FS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open mount root: %w", err)
	}
	return &FS{root: root, readOnly: readOnly}, nil
}

// Close releases the directory. Files still open keep working; new
// operations fail with EBADF.
func (f *FS) Close() error { return f.root.Close() }

// String returns the host directory.
func (f *FS) String() string { return f.root.Name() }

// rel turns a path wazero hands over (relative to the mount, cleaned,
// maybe with a trailing slash) into one for the root: "." for the root
// itself, never absolute.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// pathErrno maps an error of a path operation on the root to an errno.
// os.Root reports a path that would leave the root (through "..", a
// symlink pointing above the root, or an absolute symlink) with an error
// that is not an errno: that is EPERM, as for a WASI path that escapes its
// preopen.
func pathErrno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	var (
		we experimentalsys.Errno
		se syscall.Errno
	)
	switch {
	case errors.As(err, &we):
		return we
	case errors.As(err, &se):
		return experimentalsys.UnwrapOSError(se)
	case errors.Is(err, fs.ErrNotExist):
		return experimentalsys.ENOENT
	case errors.Is(err, fs.ErrExist):
		return experimentalsys.EEXIST
	case errors.Is(err, fs.ErrClosed):
		return experimentalsys.EBADF
	}
	return experimentalsys.EPERM
}

const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_CREAT | experimentalsys.O_TRUNC | experimentalsys.O_APPEND

// OpenFile implements experimentalsys.FS.
func (f *FS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if flag&experimentalsys.O_DIRECTORY != 0 && flag&(experimentalsys.O_WRONLY|experimentalsys.O_RDWR) != 0 {
		return nil, experimentalsys.EISDIR
	}
	if f.readOnly && flag&writeFlags != 0 {
		if flag&experimentalsys.O_CREAT == 0 {
			// Report a directory opened for writing as such, and a
			// missing file as missing, as Linux does on a read-only mount.
			if _, err := f.root.Stat(rel(p)); err != nil {
				return nil, pathErrno(err)
			}
		}
		return nil, experimentalsys.EROFS
	}
	oflag := osFlag(flag)
	perm &= fs.ModePerm
	var (
		of  *os.File
		err error
	)
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		of, err = f.openNoFollow(rel(p), oflag, perm)
	} else {
		of, err = f.root.OpenFile(rel(p), oflag, perm)
	}
	if err != nil {
		return nil, pathErrno(err)
	}
	return newFile(of, flag, f.readOnly), 0
}

// openNoFollow opens p without following a symlink in its last component
// (ELOOP when it is one).
func (f *FS) openNoFollow(p string, oflag int, perm fs.FileMode) (*os.File, error) {
	dir, name, errno := f.parent(p)
	if errno != 0 {
		return nil, errno
	}
	defer dir.Close()
	if name == "." {
		return f.root.OpenFile(p, oflag&^unix.O_NOFOLLOW, perm)
	}
	fd, err := unix.Openat(int(dir.Fd()), name, oflag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(f.root.Name(), p)), nil
}

// parent opens, through the root, the directory holding p's last component
// and returns it with that component ("." for the root itself). The
// component is never "..": a path ending in ".." is EPERM at the root and
// otherwise never reaches here cleaned.
func (f *FS) parent(p string) (*os.File, string, experimentalsys.Errno) {
	p = path.Clean(p)
	dir, name := path.Split(p)
	if name == ".." {
		return nil, "", experimentalsys.EPERM
	}
	if dir == "" {
		dir = "."
	}
	d, err := f.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, "", pathErrno(err)
	}
	return d, name, 0
}

func osFlag(flag experimentalsys.Oflag) int {
	var of int
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_WRONLY | experimentalsys.O_RDWR) {
	case experimentalsys.O_WRONLY:
		of = os.O_WRONLY
	case experimentalsys.O_RDWR:
		of = os.O_RDWR
	default:
		of = os.O_RDONLY
	}
	for _, m := range []struct {
		sys experimentalsys.Oflag
		os  int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_DIRECTORY, unix.O_DIRECTORY},
		{experimentalsys.O_DSYNC, unix.O_DSYNC},
		{experimentalsys.O_RSYNC, unix.O_RSYNC},
		{experimentalsys.O_NONBLOCK, unix.O_NONBLOCK},
	} {
		if flag&m.sys != 0 {
			of |= m.os
		}
	}
	return of
}

// Lstat implements experimentalsys.FS: the last component is not followed.
func (f *FS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Lstat(rel(p))
	if err != nil {
		return sys.Stat_t{}, pathErrno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Stat implements experimentalsys.FS.
func (f *FS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Stat(rel(p))
	if err != nil {
		return sys.Stat_t{}, pathErrno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Mkdir implements experimentalsys.FS.
func (f *FS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	errno := pathErrno(f.root.Mkdir(rel(p), perm&fs.ModePerm))
	if errno == experimentalsys.ENOTDIR {
		errno = experimentalsys.ENOENT // as wazero's DirFS reports it
	}
	return errno
}

// Chmod implements experimentalsys.FS.
func (f *FS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	return pathErrno(f.root.Chmod(rel(p), perm&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
}

// Rename implements experimentalsys.FS.
func (f *FS) Rename(from, to string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if rel(from) == rel(to) {
		return 0
	}
	return pathErrno(f.root.Rename(rel(from), rel(to)))
}

// Rmdir implements experimentalsys.FS.
func (f *FS) Rmdir(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	dir, name, errno := f.parent(rel(p))
	if errno != 0 {
		return errno
	}
	defer dir.Close()
	if name == "." {
		return experimentalsys.EINVAL // the mount itself, as rmdir(".")
	}
	return pathErrno(unix.Unlinkat(int(dir.Fd()), name, unix.AT_REMOVEDIR))
}

// Unlink implements experimentalsys.FS: a symlink is removed, not its
// target.
func (f *FS) Unlink(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	dir, name, errno := f.parent(rel(p))
	if errno != 0 {
		return errno
	}
	defer dir.Close()
	if name == "." {
		return experimentalsys.EISDIR
	}
	errno = pathErrno(unix.Unlinkat(int(dir.Fd()), name, 0))
	if errno == experimentalsys.EPERM {
		errno = experimentalsys.EISDIR // Linux says EISDIR, others EPERM: as wazero
	}
	return errno
}

// Link implements experimentalsys.FS: both names resolve beneath the root.
func (f *FS) Link(oldPath, newPath string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	return pathErrno(f.root.Link(rel(oldPath), rel(newPath)))
}

// Symlink implements experimentalsys.FS. The target is stored as given
// (it is resolved beneath the root when the link is followed), but an
// absolute target is refused with EPERM, as WASI's path resolution rules
// and wazero's DirFS do.
func (f *FS) Symlink(oldPath, linkName string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if path.IsAbs(oldPath) {
		return experimentalsys.EPERM
	}
	return pathErrno(f.root.Symlink(oldPath, rel(linkName)))
}

// Readlink implements experimentalsys.FS.
func (f *FS) Readlink(p string) (string, experimentalsys.Errno) {
	dst, err := f.root.Readlink(rel(p))
	if err != nil {
		return "", pathErrno(err)
	}
	return dst, 0
}

// Utimens implements experimentalsys.FS, following symlinks (beneath the
// root).
func (f *FS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	return pathErrno(f.root.Chtimes(rel(p), timeOf(atim), timeOf(mtim)))
}

// timeOf is the time of ns since the epoch; the zero Time (left unchanged
// by os.Root.Chtimes) for UTIME_OMIT.
func timeOf(ns int64) time.Time {
	if ns == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// eofOK maps io.EOF (not an error to wazero) to 0.
func eofOK(err error) experimentalsys.Errno {
	if errors.Is(err, io.EOF) {
		return 0
	}
	return experimentalsys.UnwrapOSError(err)
}
