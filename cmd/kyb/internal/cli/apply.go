package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
)

func newApplyCmd(g *globals) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update objects from manifests (YAML or JSON, multi-document)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("apply: -f is required (a file, a directory or - for stdin)")
			}
			docs, err := readManifests(files, g.streams.In)
			if err != nil {
				return err
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			for _, d := range docs {
				ctx, cancel := g.reqCtx(cmd.Context())
				reply, err := c.Apply(ctx, d.data)
				cancel()
				if err != nil {
					return fmt.Errorf("apply %s: %w", d.name, err)
				}
				for _, r := range reply.Results {
					for _, w := range r.Warnings {
						fmt.Fprintf(g.streams.Err, "Warning: %s/%s: %s\n", strings.ToLower(r.Kind), r.Name, w)
					}
					fmt.Fprintf(g.streams.Out, "%s/%s %s\n", strings.ToLower(r.Kind), r.Name, r.Action)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "manifest file, directory of manifests, or - for stdin")
	return cmd
}

type manifest struct {
	name string
	data []byte
}

// readManifests reads each -f argument: a file, every .yaml/.yml/.json file of
// a directory (sorted), or stdin for "-".
func readManifests(args []string, stdin io.Reader) ([]manifest, error) {
	var out []manifest
	for _, a := range args {
		if a == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			out = append(out, manifest{"stdin", b})
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		if !fi.IsDir() {
			b, err := os.ReadFile(a)
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			out = append(out, manifest{a, b})
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("read manifests in %s: %w", a, err)
		}
		var names []string
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					names = append(names, filepath.Join(a, e.Name()))
				}
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("read manifests: no .yaml, .yml or .json file in %s", a)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			out = append(out, manifest{n, b})
		}
	}
	for _, m := range out {
		if len(bytes.TrimSpace(m.data)) == 0 {
			return nil, fmt.Errorf("read manifest %s: empty", m.name)
		}
	}
	return out, nil
}

var _ = api.ActionCreated
