package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
)

func newModuleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "module", Short: "Manage the wasm modules kept in the cluster (pods name them kyb://NAME)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "push NAME FILE",
		Short: "Put a wasm module into the cluster's module store",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, file := args[0], args[1]
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("module push: %w", err)
			}
			if !bytes.HasPrefix(data, []byte("\x00asm")) {
				return fmt.Errorf("module push: %s is not a WebAssembly module (no \\0asm magic)", file)
			}
			return g.withModules(cmd.Context(), "module push", func(ctx context.Context, obs jetstream.ObjectStore) error {
				info, err := obs.PutBytes(ctx, name, data)
				if err != nil {
					return fmt.Errorf("module push %s: %w", name, err)
				}
				fmt.Fprintf(g.streams.Out, "module/%s pushed (%d bytes, %s); use image: kyb://%s\n", name, info.Size, info.Digest, name)
				return nil
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the modules in the cluster's module store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withModules(cmd.Context(), "module ls", func(ctx context.Context, obs jetstream.ObjectStore) error {
				list, err := obs.List(ctx)
				if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
					return fmt.Errorf("module ls: %w", err)
				}
				w := tabwriter.NewWriter(g.streams.Out, 3, 0, 3, ' ', 0)
				fmt.Fprintln(w, "NAME\tSIZE\tDIGEST")
				for _, o := range list {
					fmt.Fprintf(w, "%s\t%d\t%s\n", o.Name, o.Size, o.Digest)
				}
				return w.Flush()
			})
		},
	})
	return cmd
}

// withModules connects to the cluster, opens its module store and runs f
// with it within the request timeout.
func (g *globals) withModules(ctx context.Context, verb string, f func(context.Context, jetstream.ObjectStore) error) error {
	_, nc, err := g.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	ctx, cancel := g.reqCtx(ctx)
	defer cancel()
	obs, err := js.ObjectStore(ctx, api.ModulesBucket)
	if err != nil {
		return fmt.Errorf("%s: open module store %s: %w", verb, api.ModulesBucket, err)
	}
	return f(ctx, obs)
}
