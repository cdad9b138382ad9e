package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/client"
)

// Streams are a command's I/O.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Version is the kyb version, set at build time with -ldflags.
var Version = "v0.1.0-dev"

type globals struct {
	server  string
	timeout time.Duration
	streams Streams
	log     *slog.Logger
}

// Run runs kyb with args. A context cancelled by a signal is a clean exit.
func Run(ctx context.Context, args []string, s Streams) error {
	g := &globals{streams: s}
	root := &cobra.Command{
		Use:           "kyb",
		Short:         "kybernetes: a small orchestrator for containers and WebAssembly, on NATS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	def := os.Getenv("KYB_SERVER")
	if def == "" {
		def = nats.DefaultURL
	}
	root.PersistentFlags().StringVarP(&g.server, "server", "s", def, "NATS URL of the control plane (env KYB_SERVER)")
	root.PersistentFlags().DurationVar(&g.timeout, "request-timeout", 10*time.Second, "timeout of each API request")
	g.log = slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: slog.LevelInfo}))

	root.AddCommand(
		newUpCmd(g), newServerCmd(g), newAgentCmd(g),
		newApplyCmd(g), newGetCmd(g), newDescribeCmd(g), newDeleteCmd(g),
		newLogsCmd(g), newModuleCmd(g), newImageCmd(g), newAuthCmd(g), newVersionCmd(g),
	)
	err := root.ExecuteContext(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// connect opens a client connection to the control plane.
func (g *globals) connect() (*client.Client, *nats.Conn, error) {
	nc, err := nats.Connect(g.server, nats.Name("kyb-cli"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w (is the server running? start one with `kyb up`)", g.server, err)
	}
	return client.New(nc), nc, nil
}

func (g *globals) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the kyb version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(g.streams.Out, "kyb", Version)
			return nil
		},
	}
}
