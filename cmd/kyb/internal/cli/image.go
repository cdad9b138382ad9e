package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/runtimes/containerd"
)

// newImageCmd manages the container images of this machine's containerd,
// as `ctr images` does: for air-gapped nodes, import an archive on the node.
func newImageCmd(g *globals) *cobra.Command {
	var address, dataDir string
	open := func(ctx context.Context) (*containerd.Runtime, error) {
		r, err := containerd.New(ctx, containerd.Config{Address: address, StateDir: filepath.Join(dataDir, "agent", "containerd")}, g.log)
		if err != nil {
			return nil, err
		}
		ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := r.Info(ictx); err != nil {
			r.Close()
			return nil, fmt.Errorf("containerd at %s does not answer: %w", address, err)
		}
		return r, nil
	}
	cmd := &cobra.Command{Use: "image", Short: "Manage the container images of this node's containerd (namespace kyb)"}
	cmd.PersistentFlags().StringVar(&address, "containerd-address", containerd.EnvAddress(), "containerd socket ($KYB_CONTAINERD_ADDRESS sets the default)")
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the agent's data directory")
	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE.tar",
		Short: "Import an OCI or docker image archive (for air-gapped nodes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := open(cmd.Context())
			if err != nil {
				return fmt.Errorf("image import: %w", err)
			}
			defer r.Close()
			imgs, err := r.ImportImage(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("image import %s: %w", args[0], err)
			}
			for _, i := range imgs {
				fmt.Fprintf(g.streams.Out, "imported %s (%s)\n", i.Ref, i.Digest)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the images present on this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := open(cmd.Context())
			if err != nil {
				return fmt.Errorf("image ls: %w", err)
			}
			defer r.Close()
			imgs, err := r.ListImages(cmd.Context())
			if err != nil {
				return fmt.Errorf("image ls: %w", err)
			}
			w := tabwriter.NewWriter(g.streams.Out, 3, 0, 3, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE")
			for _, i := range imgs {
				fmt.Fprintf(w, "%s\t%s\t%d\n", i.Ref, i.Digest, i.Size)
			}
			return w.Flush()
		},
	})
	return cmd
}
