package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/internal/metrics"
)

// Default /metrics addresses: loopback, one port for the control plane
// (kyb server, and kyb up, whose local agent's families are in the same
// process) and the kubelet's old read-only port for an agent.
const (
	defaultServerMetrics = "127.0.0.1:9363"
	defaultAgentMetrics  = "127.0.0.1:10255"
)

// metricsFlags are --metrics-listen, --metrics-token-file and
// --metrics-insecure.
type metricsFlags struct {
	listen, tokenFile string
	insecure          bool
}

func (f *metricsFlags) register(cmd *cobra.Command, def string) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "metrics-listen", def, `HOST:PORT serving Prometheus /metrics ("off" for none); beyond loopback it needs --metrics-token-file or --metrics-insecure`)
	fl.StringVar(&f.tokenFile, "metrics-token-file", "", "file holding a bearer token every scrape must send (Prometheus: authorization.credentials_file)")
	fl.BoolVar(&f.insecure, "metrics-insecure", false, "serve /metrics beyond loopback with no token: anyone who reaches the port reads it")
}

// options reads the token file and checks the flags.
func (f *metricsFlags) options() (metrics.Options, error) {
	o := metrics.Options{Addr: f.listen, Insecure: f.insecure}
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return o, fmt.Errorf("--metrics-token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(b))
		if o.Token == "" {
			return o, fmt.Errorf("--metrics-token-file %s is empty", f.tokenFile)
		}
	}
	if err := o.Check(); err != nil {
		return o, fmt.Errorf("--metrics-listen: %w", err)
	}
	return o, nil
}

// serve starts /metrics until ctx ends. A refused configuration is an
// error; an address that cannot be listened on (another kyb on this host
// holds the default port) is logged and the command goes on without it.
func (f *metricsFlags) serve(ctx context.Context, log *slog.Logger) error {
	o, err := f.options()
	if err != nil {
		return err
	}
	if _, err := metrics.Serve(ctx, o, log); err != nil {
		log.Warn("metrics not served", "err", err)
	}
	return nil
}
