package cli

import (
	"bytes"
	"fmt"
	"os"

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
			_, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return fmt.Errorf("module push: %w", err)
			}
			ctx, cancel := g.reqCtx(cmd.Context())
			defer cancel()
			obs, err := js.ObjectStore(ctx, api.ModulesBucket)
			if err != nil {
				return fmt.Errorf("module push: open module store %s: %w", api.ModulesBucket, err)
			}
			info, err := obs.PutBytes(ctx, name, data)
			if err != nil {
				return fmt.Errorf("module push %s: %w", name, err)
			}
			fmt.Fprintf(g.streams.Out, "module/%s pushed (%d bytes, %s); use image: kyb://%s\n", name, info.Size, info.Digest, name)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the modules in the cluster's module store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx, cancel := g.reqCtx(cmd.Context())
			defer cancel()
			obs, err := js.ObjectStore(ctx, api.ModulesBucket)
			if err != nil {
				return fmt.Errorf("module ls: open module store %s: %w", api.ModulesBucket, err)
			}
			list, err := obs.List(ctx)
			if err != nil && err != jetstream.ErrNoObjectsFound {
				return fmt.Errorf("module ls: %w", err)
			}
			fmt.Fprintln(g.streams.Out, "NAME\tSIZE\tDIGEST")
			for _, o := range list {
				fmt.Fprintf(g.streams.Out, "%s\t%d\t%s\n", o.Name, o.Size, o.Digest)
			}
			return nil
		},
	})
	return cmd
}
