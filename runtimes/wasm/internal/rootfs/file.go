package rootfs

import (
	"io"
	"io/fs"
	"os"
	"syscall"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// file is an open file or directory of an FS. Everything it does goes
// through its descriptor, never through a path, so it cannot be redirected
// out of the root after it was opened. wazero calls one file from one
// goroutine at a time (the module's).
type file struct {
	f        *os.File
	flag     experimentalsys.Oflag
	readOnly bool
	closed   bool

	statted bool // dev, ino and isDir are known
	dev     uint64
	ino     sys.Inode
	isDir   bool
}

var _ experimentalsys.File = (*file)(nil)

func newFile(f *os.File, flag experimentalsys.Oflag, readOnly bool) *file {
	return &file{f: f, flag: flag, readOnly: readOnly}
}

func (f *file) cached() experimentalsys.Errno {
	if f.statted {
		return 0
	}
	_, errno := f.Stat()
	return errno
}

// Dev implements experimentalsys.File.
func (f *file) Dev() (uint64, experimentalsys.Errno) {
	errno := f.cached()
	return f.dev, errno
}

// Ino implements experimentalsys.File.
func (f *file) Ino() (sys.Inode, experimentalsys.Errno) {
	errno := f.cached()
	return f.ino, errno
}

// IsDir implements experimentalsys.File.
func (f *file) IsDir() (bool, experimentalsys.Errno) {
	errno := f.cached()
	return f.isDir, errno
}

// IsAppend implements experimentalsys.File.
func (f *file) IsAppend() bool { return f.flag&experimentalsys.O_APPEND != 0 }

// SetAppend implements experimentalsys.File, by changing the descriptor's
// flags (not by reopening the file by name, as wazero's DirFS does).
func (f *file) SetAppend(enable bool) experimentalsys.Errno {
	if errno := f.fileOnly(); errno != 0 {
		return errno
	}
	if enable && f.readOnly {
		return experimentalsys.EROFS
	}
	fd := int(f.f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if enable {
		fl |= unix.O_APPEND
	} else {
		fl &^= unix.O_APPEND
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl); err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if enable {
		f.flag |= experimentalsys.O_APPEND
	} else {
		f.flag &^= experimentalsys.O_APPEND
	}
	return 0
}

// Stat implements experimentalsys.File.
func (f *file) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	fi, err := f.f.Stat()
	if err != nil {
		return sys.Stat_t{}, experimentalsys.UnwrapOSError(err)
	}
	st := sys.NewStat_t(fi)
	f.dev, f.ino, f.isDir, f.statted = st.Dev, st.Ino, st.Mode&fs.ModeDir != 0, true
	return st, 0
}

// fileOnly is EBADF for a closed file and EISDIR for a directory.
func (f *file) fileOnly() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	if isDir, errno := f.IsDir(); errno != 0 {
		return errno
	} else if isDir {
		return experimentalsys.EISDIR
	}
	return 0
}

// Read implements experimentalsys.File.
func (f *file) Read(buf []byte) (int, experimentalsys.Errno) {
	if errno := f.fileOnly(); errno != 0 {
		return 0, errno
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Read(buf)
	return n, eofOK(err)
}

// Pread implements experimentalsys.File.
func (f *file) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if errno := f.fileOnly(); errno != 0 {
		return 0, errno
	}
	if len(buf) == 0 {
		return 0, 0
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := f.f.ReadAt(buf, off)
	return n, eofOK(err)
}

// offset is int64 under another name, only so that go vet's stdmethods
// check does not take Seek below for a misspelt io.Seeker: it implements
// wazero's File.Seek, which returns an Errno, not an error.
type offset = int64

// Seek implements experimentalsys.File. Seeking a directory to 0 rewinds
// it: the next Readdir reads the directory afresh.
func (f *file) Seek(offset offset, whence int) (int64, experimentalsys.Errno) {
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if whence < io.SeekStart || whence > io.SeekEnd {
		return 0, experimentalsys.EINVAL
	}
	n, err := f.f.Seek(offset, whence)
	return n, experimentalsys.UnwrapOSError(err)
}

// Readdir implements experimentalsys.File. os.File reads entries' types and
// inodes relative to the directory's descriptor.
func (f *file) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if f.closed {
		return nil, experimentalsys.EBADF
	}
	if isDir, errno := f.IsDir(); errno != 0 {
		return nil, errno
	} else if !isDir {
		return nil, experimentalsys.EBADF
	}
	fis, err := f.f.Readdir(n)
	if errno := eofOK(err); errno != 0 {
		if errno == experimentalsys.EINVAL || errno == experimentalsys.ENOTDIR {
			errno = experimentalsys.EBADF
		}
		return nil, errno
	}
	out := make([]experimentalsys.Dirent, 0, len(fis))
	for _, fi := range fis {
		var ino sys.Inode
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		out = append(out, experimentalsys.Dirent{Name: fi.Name(), Ino: ino, Type: fi.Mode().Type()})
	}
	return out, 0
}

// Write implements experimentalsys.File.
func (f *file) Write(buf []byte) (int, experimentalsys.Errno) {
	if errno := f.fileOnly(); errno != 0 {
		return 0, errno
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Write(buf)
	return n, experimentalsys.UnwrapOSError(err)
}

// Pwrite implements experimentalsys.File.
func (f *file) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if errno := f.fileOnly(); errno != 0 {
		return 0, errno
	}
	if len(buf) == 0 {
		return 0, 0
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := unix.Pwrite(int(f.f.Fd()), buf, off)
	return n, experimentalsys.UnwrapOSError(err)
}

// Truncate implements experimentalsys.File.
func (f *file) Truncate(size int64) experimentalsys.Errno {
	if errno := f.fileOnly(); errno != 0 {
		return errno
	}
	if size < 0 {
		return experimentalsys.EINVAL
	}
	if f.readOnly {
		return experimentalsys.EROFS
	}
	return experimentalsys.UnwrapOSError(f.f.Truncate(size))
}

// Sync implements experimentalsys.File.
func (f *file) Sync() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	return experimentalsys.UnwrapOSError(f.f.Sync())
}

// Datasync implements experimentalsys.File.
func (f *file) Datasync() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	return experimentalsys.UnwrapOSError(unix.Fdatasync(int(f.f.Fd())))
}

// Utimens implements experimentalsys.File, on the descriptor.
func (f *file) Utimens(atim, mtim int64) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	ts := [2]unix.Timespec{timespec(atim), timespec(mtim)}
	// utimensat(fd, NULL, ...) is futimens: x/sys/unix has no wrapper
	// that passes a NULL path.
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.f.Fd(), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if e != 0 {
		return experimentalsys.UnwrapOSError(e)
	}
	return 0
}

func timespec(ns int64) unix.Timespec {
	if ns == experimentalsys.UTIME_OMIT {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(ns)
}

// Close implements experimentalsys.File.
func (f *file) Close() experimentalsys.Errno {
	if f.closed {
		return 0
	}
	f.closed = true
	return experimentalsys.UnwrapOSError(f.f.Close())
}
