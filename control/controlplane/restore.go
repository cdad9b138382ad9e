package controlplane

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kybernetes/kybernetes/control/backup"
)

// restore restores the backup file path into the store (every stream of
// the backup, with its revisions), before anything opens it.
func (cp *ControlPlane) restore(ctx context.Context, path string, force bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	start := time.Now()
	// One server: every stream gets one replica (a backup of a 3-server
	// cluster restores into one; the cluster raises them as it grows).
	m, err := backup.Restore(ctx, cp.nc, f, backup.Options{Force: force, Replicas: 1})
	if err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	cp.log.Info("restored a backup", "file", path, "created", m.Created, "streams", m.Streams, "took", time.Since(start))
	return nil
}
