package cli

import (
	"bytes"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
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
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			// Each request of the upload (open, every chunk) has its own
			// timeout; a large module takes as long as it takes.
			info, err := c.PushModule(cmd.Context(), name, data)
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
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := g.reqCtx(cmd.Context())
			defer cancel()
			list, err := c.ListModules(ctx)
			if err != nil {
				return fmt.Errorf("module ls: %w", err)
			}
			w := tabwriter.NewWriter(g.streams.Out, 3, 0, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tSIZE\tDIGEST")
			for _, o := range list {
				fmt.Fprintf(w, "%s\t%d\t%s\n", o.Name, o.Size, o.Digest)
			}
			return w.Flush()
		},
	})
	return cmd
}
