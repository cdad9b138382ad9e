package inproc

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/kybernetes/kybernetes/runtimes"
)

// MaxIDLen caps an ID or a name that becomes one element of a path.
const MaxIDLen = 128

// ErrBadID is wrapped by the errors of CheckID.
var ErrBadID = errors.New("not usable as a path element")

// CheckID returns nil when id can be one element of a file path: not empty,
// not `.` or `..`, without `/`, `\` or NUL, at most MaxIDLen bytes. Else it
// returns an error wrapping ErrBadID. The engine checks every ID before it
// becomes the name of a state file, so that no bug above (nor a tampered
// state file) can turn an ID into a host path outside StateDir.
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty id: %w", ErrBadID)
	case id == "." || id == "..":
		return fmt.Errorf("id %q: %w", id, ErrBadID)
	case strings.ContainsAny(id, "/\\\x00"):
		return fmt.Errorf("id %q holds '/', '\\' or NUL: %w", clip(id), ErrBadID)
	case len(id) > MaxIDLen:
		return fmt.Errorf("id %q... is %d bytes, more than %d: %w", clip(id), len(id), MaxIDLen, ErrBadID)
	}
	return nil
}

// checkHostPath returns nil when p is empty (allowed) or an absolute path
// with no `..` element and no NUL.
func checkHostPath(p string, allowEmpty bool) error {
	switch {
	case p == "":
		if allowEmpty {
			return nil
		}
		return errors.New("empty path")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q holds a NUL", clip(p))
	case !path.IsAbs(p):
		return fmt.Errorf("path %q is not absolute", clip(p))
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Errorf("path %q holds '..'", clip(p))
		}
	}
	return nil
}

// checkSandboxConfig checks the names of a sandbox (its namespace and uid
// may be empty).
func checkSandboxConfig(cfg *runtimes.SandboxConfig) error {
	if err := CheckID(cfg.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	for _, f := range []struct{ name, v string }{{"namespace", cfg.Namespace}, {"uid", cfg.UID}} {
		if f.v == "" {
			continue
		}
		if err := CheckID(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// checkContainerConfig checks the name and the host paths of a container:
// its log file and the host side of its mounts must be absolute paths with
// no `..` (a relative path would be taken from the agent's working
// directory).
func checkContainerConfig(cfg *runtimes.ContainerConfig) error {
	if err := CheckID(cfg.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if err := checkHostPath(cfg.LogPath, true); err != nil {
		return fmt.Errorf("log path: %w", err)
	}
	for i, m := range cfg.Mounts {
		if err := checkHostPath(m.HostPath, false); err != nil {
			return fmt.Errorf("mount %d: host path: %w", i, err)
		}
		if err := checkHostPath(m.ContainerPath, false); err != nil {
			return fmt.Errorf("mount %d: container path: %w", i, err)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
