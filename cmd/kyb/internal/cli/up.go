package cli

import (
	"context"
	"errors"
	"fmt"

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
			nc, err := nats.Connect("", nats.InProcessServer(cp.Server()), nats.Name("kyb-agent"), nats.MaxReconnects(-1))
			if err != nil {
				return fmt.Errorf("up: connect agent: %w", err)
			}
			defer nc.Close()
			af.dataDir = sf.dataDir
			agentErr := make(chan error, 1)
			go func() { agentErr <- runAgent(ctx, &af, nc, g.log) }()

			url := cp.ClientURL()
			fmt.Fprintf(g.streams.Out, `kybernetes is up: %s (data in %s)

Next:
  export KYB_SERVER=%s
  go run ./cmd/kyb get nodes
  go tool task example:hello      # a wasm pod; then: go run ./cmd/kyb logs hello-wasm
  go run ./cmd/kyb apply -f examples/  (or any Kubernetes Pod manifest)
  nats --server %s micro info kyb
Stop with Ctrl-C.
`, url, sf.dataDir, url, url)
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
