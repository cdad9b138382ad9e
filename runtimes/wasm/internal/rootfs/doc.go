// Package rootfs is a wazero file system (experimental/sys.FS) over a host
// directory that resolves every path beneath that directory, symlinks
// included.
//
// wazero's own DirFS joins the guest's path to the host directory and
// lets the kernel follow symlinks, so a module that can write to a mount
// can create "esc -> ../../../../etc" and read or write the host through
// it (wazero issue #2321, open in v1.12.0). This package resolves every
// path with Go's os.Root instead: each component is opened relative to the
// directory before it with O_NOFOLLOW, symlinks are resolved by the root
// and may not point above it (or be absolute), and ".." never climbs out.
// An escape fails with EPERM, a missing target with ENOENT; a symlink
// whose target stays beneath the root works as usual.
//
// Operations that act on a name rather than what it points to (lstat,
// unlink, rmdir, readlink, symlink, open with O_NOFOLLOW) open the parent
// directory through the root and then use the *at system call on the last
// component, so they never follow a link either.
//
// It relies on os.Root being sound: Go 1.26.5 or later, which fixed a
// final symlink followed out of the root when the path ends in "/"
// (CVE-2026-39822; wazero passes trailing slashes on). go.mod requires it.
//
// An FS holds an open directory descriptor: Close it when the module that
// uses it is done. It is safe for concurrent use (each instantiation of a
// module has its own open files; the root is shared).
package rootfs
