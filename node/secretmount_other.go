//go:build !linux

package node

import "os"

// mountSecretTmpfs is Linux's only: elsewhere secret volumes are written
// to the node's disk.
func mountSecretTmpfs(dir string) (bool, error) { return false, nil }

// unmountBeneath has nothing to do where mountSecretTmpfs mounts nothing.
func unmountBeneath(dir string) error { return nil }

// ownedBy is not checked where groups are not set.
func ownedBy(info os.FileInfo, gid int64) bool { return true }
