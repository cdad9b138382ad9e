package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

func newBackupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a backup of the whole store (objects, secrets, credentials' records, events, logs, modules) to FILE",
		Long: `Write a backup of the whole store to FILE (cluster-admin only): every JetStream
stream of the control plane, each a consistent snapshot taken by the server, with
its revisions (resourceVersions). The cluster's keys (<data-dir>/server/pki) are
not in it: keep them apart, and put them back before restoring to keep the
credentials issued before the backup valid. Restore with
kyb server --data-dir NEW --restore FILE (or kyb restore FILE --data-dir NEW).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			path := args[0]
			tmp, err := os.CreateTemp(filepath.Dir(path), ".kyb-backup-*")
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer os.Remove(tmp.Name())
			n, err := c.Backup(cmd.Context(), tmp)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Chmod(tmp.Name(), 0o600) // it holds every secret
			}
			if err == nil {
				err = os.Rename(tmp.Name(), path)
			}
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(g.streams.Out, "backup written to %s (%d bytes)\n", path, n)
			return nil
		},
	}
}

func newRestoreCmd(g *globals) *cobra.Command {
	var dataDir string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup (kyb backup) into a server's data directory, offline",
		Long: `Restore a backup into the data directory of a server that is not running, then
stop: start it afterwards with kyb server --data-dir DIR. A data directory that
already holds data is refused unless --force (which replaces it). Copy the
cluster's keys (pki) into DIR/server/pki first to keep earlier credentials valid.
kyb server --restore FILE does the same and goes on serving.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sf := serverFlags{dataDir: dataDir, listen: "127.0.0.1:0", sync: "always", tls: "auto",
				leaseDuration: controlplane.DefaultLeaseDuration, renew: controlplane.DefaultRenewInterval,
				serviceCIDR: api.DefaultServiceCIDR, nodePorts: api.DefaultNodePortRange, clusterCIDR: api.DefaultClusterCIDR,
				restore: args[0], restoreForce: force}
			cfg, err := sf.config()
			if err != nil {
				return err
			}
			cp, err := controlplane.Start(cmd.Context(), cfg, g.log)
			if err != nil {
				return err
			}
			if err := cp.Shutdown(); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "restored %s into %s; start it with: kyb server --data-dir %s\n", args[0], dataDir, dataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the data directory to restore into")
	cmd.Flags().BoolVar(&force, "force", false, "replace the data already in the data directory")
	return cmd
}
