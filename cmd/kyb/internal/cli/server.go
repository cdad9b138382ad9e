package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/scheduler"
)

// serverFlags are the control plane flags shared by `kyb server` and `kyb up`.
type serverFlags struct {
	dataDir, listen, sync string
	spread                bool
}

func (f *serverFlags) register(cmd *cobra.Command, defaultDir string) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", defaultDir, "directory for cluster state (JetStream storage)")
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:4222", "HOST:PORT clients and agents connect to")
	cmd.Flags().StringVar(&f.sync, "sync", "always", "durability: always (fsync every acknowledged write) or an interval such as 1s (a power failure can lose that window; a crash cannot)")
	cmd.Flags().BoolVar(&f.spread, "spread", false, "schedule pods onto the least allocated nodes instead of bin-packing")
}

// start checks the flags, tunes the garbage collector for a long-running
// control plane and starts one.
func (f *serverFlags) start(ctx context.Context, g *globals) (*controlplane.ControlPlane, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	tuneGC()
	return controlplane.Start(ctx, cfg, g.log)
}

func (f *serverFlags) config() (controlplane.Config, error) {
	if _, _, err := controlplane.ParseSync(f.sync); err != nil {
		return controlplane.Config{}, fmt.Errorf("--sync: %w", err)
	}
	cfg := controlplane.Config{DataDir: filepath.Join(f.dataDir, "server"), Listen: f.listen, Sync: f.sync}
	if f.spread {
		cfg.Scheduler.Strategy = scheduler.Spread
	}
	return cfg, nil
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kyb"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kyb")
	}
	return filepath.Join(os.TempDir(), "kyb")
}

func newServerCmd(g *globals) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: embedded NATS with JetStream, the API, the scheduler and the controllers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cp, err := sf.start(cmd.Context(), g)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "kyb server listening on %s (data in %s, sync %s)\n", cp.ClientURL(), sf.dataDir, sf.sync)
			select {
			case <-cmd.Context().Done():
			case <-cp.Done():
			}
			return cp.Shutdown()
		},
	}
	sf.register(cmd, defaultDataDir())
	return cmd
}
