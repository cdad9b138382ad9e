package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kybernetes/kybernetes/internal/version"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/client"
)

// Streams are a command's I/O.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Version is the kyb version (internal/version, stamped at build time).
var Version = version.Version

type globals struct {
	server  string
	config  string
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
	root.PersistentFlags().StringVarP(&g.server, "server", "s", os.Getenv("KYB_SERVER"), "NATS URL of the control plane (env KYB_SERVER; default: the config file's server)")
	root.PersistentFlags().StringVar(&g.config, "config", "", "kyb client config: server, credentials and CA (default $KYB_CONFIG, then ~/.kyb/config)")
	root.PersistentFlags().DurationVar(&g.timeout, "request-timeout", 10*time.Second, "timeout of each API request")
	g.log = slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: slog.LevelInfo}))

	root.AddCommand(
		newUpCmd(g), newServerCmd(g), newAgentCmd(g),
		newApplyCmd(g), newDiffCmd(g), newExplainCmd(g), newGetCmd(g), newDescribeCmd(g), newDeleteCmd(g),
		newLogsCmd(g), newModuleCmd(g), newImageCmd(g), newAuthCmd(g), newVersionCmd(g),
		newTokenCmd(g), newUserCmd(g), newNodeCmd(g), newClusterCmd(g),
		newCordonCmd(g, "cordon", true), newCordonCmd(g, "uncordon", false), newDrainCmd(g),
		newMetaCmd(g, "label"), newMetaCmd(g, "annotate"), newWaitCmd(g),
		newAPIResourcesCmd(g), newClusterInfoCmd(g), newEditCmd(g),
		newScaleCmd(g), newRolloutCmd(g), newSetCmd(g), newExposeCmd(g), newCreateCmd(g), newTopCmd(g),
		newBackupCmd(g), newRestoreCmd(g),
		newExecCmd(g), newAttachCmd(g), newPortForwardCmd(g), newCpCmd(g),
	)
	g.addCompletions(root)
	root.AddCommand(newWasmHostCmd(g)) // hidden: what an agent starts
	err := root.ExecuteContext(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// connect opens a client connection to the control plane, with the
// credentials of the config file.
func (g *globals) connect() (*client.Client, *nats.Conn, error) {
	path := client.ConfigPath(g.config)
	cfg, err := client.LoadConfig(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && g.config == "" && os.Getenv(client.EnvConfig) == "":
		cfg = &client.Config{} // no credentials: the server will say so
	case err != nil:
		return nil, nil, err
	}
	url := g.server
	if url == "" {
		url = cfg.URL()
	}
	if url == "" {
		url = nats.DefaultURL
	}
	opts, err := cfg.Options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, append(opts, nats.Name("kyb-cli"), nats.Timeout(5*time.Second))...)
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, nil, fmt.Errorf("connect to %s: %w: the server refused the credentials of %s (set --config or KYB_CONFIG; `kyb up` writes ~/.kyb/config, `kyb user create` makes one)", url, err, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w (is the server running? start one with `kyb up`)", url, err)
	}
	return client.New(nc), nc, nil
}

// withClient connects, runs f within the request timeout, and closes the
// connection.
func (g *globals) withClient(ctx context.Context, f func(ctx context.Context, c *client.Client) error) error {
	c, nc, err := g.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := g.reqCtx(ctx)
	defer cancel()
	return f(ctx, c)
}

func (g *globals) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}
