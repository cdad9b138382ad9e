package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

// Values of --wasm-host.
const (
	wasmHostProcess = "process"
	wasmHostInproc  = "inproc"
)

// newWasmHostCmd is the hidden `kyb wasm-host`, which the agent starts
// detached to run its wasm pods in a process that outlives it.
func newWasmHostCmd(g *globals) *cobra.Command {
	var (
		dir  string
		stop bool
	)
	cmd := &cobra.Command{
		Use:    "wasm-host",
		Short:  "Run a node's wasm modules for its agent (started by `kyb agent`, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || !filepath.IsAbs(dir) {
				return errors.New("wasm-host: --dir must be an absolute directory")
			}
			if stop {
				// Every module of the node ends with it.
				return wasmhost.StopHost(cmd.Context(), dir)
			}
			cfg, err := wasmhost.ReadConfig(dir)
			if err != nil {
				return err
			}
			return wasmhost.Serve(cmd.Context(), cfg, Version, g.log.With("component", "wasm-host"))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the host's directory (socket, pid, lock, config): <data-dir>/agent/wasm-host")
	cmd.Flags().BoolVar(&stop, "stop", false, "stop the host of --dir, if one runs, and every module it runs")
	return cmd
}

// wasmRuntime returns the agent's wasm runtime: a client of the node's
// wasm host process (started or adopted), or the runtime in this process
// (--wasm-host=inproc), and what closes it.
func wasmRuntime(ctx context.Context, f *agentFlags, dir string, modules wasm.ModuleStore, log *slog.Logger) (runtimes.Runtime, func() error, error) {
	cfg := wasm.Config{
		StateDir:           filepath.Join(dir, "wasm"),
		Modules:            modules,
		ModuleDirs:         f.moduleDirs,
		InsecureRegistries: f.insecureRegistries,
		HTTP:               wasm.HTTPConfig{DefaultHostIP: f.wasmHostIP, MaxConcurrent: f.wagiMax, MaxConcurrentPerNode: f.wagiNode},
	}
	switch f.wasmHost {
	case wasmHostInproc:
		// A host left by an agent of --wasm-host=process would run its
		// modules on the same state: it is stopped (its pods restart here).
		if err := wasmhost.StopHost(ctx, filepath.Join(dir, "wasm-host")); err != nil {
			return nil, nil, err
		}
		wr, err := wasm.New(cfg, log)
		if err != nil {
			return nil, nil, err
		}
		return wr, wr.Close, nil
	case wasmHostProcess:
	default:
		return nil, nil, fmt.Errorf("--wasm-host %q: want process or inproc", f.wasmHost)
	}
	// The host runs in /: every path it is given is absolute.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wasm host: %w", err)
	}
	dir = abs
	cfg.StateDir = filepath.Join(dir, "wasm")
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find this binary to start the wasm host: %w", err)
	}
	hostDir := filepath.Join(dir, "wasm-host")
	c, err := wasmhost.Open(ctx, wasmhost.Options{
		Host: wasmhost.HostConfig{
			Dir: hostDir, StateDir: cfg.StateDir, ModuleDirs: cfg.ModuleDirs,
			InsecureRegistries: cfg.InsecureRegistries, HTTP: cfg.HTTP,
		},
		Command: []string{exe, "wasm-host", "--dir", hostDir},
		Version: Version,
		Modules: modules,
	}, log)
	if err != nil {
		return nil, nil, err
	}
	return c, c.Close, nil
}

var _ wasm.ModuleStore = (*node.Modules)(nil)
