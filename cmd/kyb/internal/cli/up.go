package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

func newUpCmd(g *globals) *cobra.Command {
	var (
		sf serverFlags
		af agentFlags
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one cluster: the control plane and a local agent (wasm, and containerd when it answers) in one process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			cp, err := sf.start(ctx, g)
			if err != nil {
				return err
			}
			defer cp.Shutdown()
			// The local agent joins as any agent does: a token made here,
			// exchanged once over an in-process connection.
			af.dataDir = sf.dataDir
			nc, err := connectNode(ctx, &af, "", func() (string, error) {
				tok, _, err := cp.Tokens().Create(ctx, 10*time.Minute, "kyb up local agent")
				return tok, err
			}, nats.InProcessServer(cp.Server()))
			if err != nil {
				return fmt.Errorf("up: %w", err)
			}
			defer nc.Close()
			agentErr := make(chan error, 1)
			go func() { agentErr <- runAgent(ctx, &af, nc, g.log) }()

			url := cp.ClientURL()
			dash := "off (--http)"
			if u := cp.DashboardURL(); u != "" {
				dash = u + " (sign in by pasting " + filepath.Join(sf.dataDir, "admin.creds") + ")"
			}
			fmt.Fprintf(g.streams.Out, `kybernetes is up: %s (data in %s)
Dashboard: %s
Admin credentials: %s (kyb config %s)
Development mode: pods may run file:// modules from %s

Next:
  export KYB_CONFIG=%s
  go run ./cmd/kyb get nodes
  go tool task example:hello      # a wasm pod; then: go run ./cmd/kyb logs hello-wasm
  go tool task examples:push && go run ./cmd/kyb apply -R -f examples/   # every example
  nats --server %s --creds %s micro info kyb
Stop with Ctrl-C.
`, url, sf.dataDir, dash, filepath.Join(sf.dataDir, "admin.creds"), sf.adminConfigPath(), strings.Join(af.moduleDirs, ", "), sf.adminConfigPath(), url, filepath.Join(sf.dataDir, "admin.creds"))
			var runErr error
			select {
			case <-ctx.Done():
			case runErr = <-agentErr:
			case <-cp.Done():
				runErr = cp.Err()
			}
			cancel()
			if errors.Is(runErr, context.Canceled) {
				runErr = nil
			}
			return runErr
		},
	}
	sf.register(cmd, defaultDataDir())
	af.register(cmd, false)
	return cmd
}
