package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

func newDiffCmd(g *globals) *cobra.Command {
	var (
		files     []string
		recursive bool
	)
	cmd := &cobra.Command{
		Use: "diff -f FILE|DIR|-",
		Short: "Show what `kyb apply -f` would change: the live objects against those the server would store " +
			"(a server dry run), with $KYB_EXTERNAL_DIFF or `diff -u -N`; exits 0 when nothing would change, 1 when something would",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("diff: -f is required (a file, a directory or - for stdin)")
			}
			results, c, nc, err := g.applyManifests(cmd, files, recursive, client.ApplyOptions{DryRun: true})
			if err != nil {
				return err
			}
			defer nc.Close()
			dir, err := os.MkdirTemp("", "kyb-diff-")
			if err != nil {
				return fmt.Errorf("diff: %w", err)
			}
			defer os.RemoveAll(dir)
			live, merged := filepath.Join(dir, "LIVE"), filepath.Join(dir, "MERGED")
			for _, d := range []string{live, merged} {
				if err := os.Mkdir(d, 0o700); err != nil {
					return fmt.Errorf("diff: %w", err)
				}
			}
			for _, r := range results {
				name := diffFileName(r)
				if r.Action != api.ActionCreated {
					ctx, cancel := g.reqCtx(cmd.Context())
					obj, err := c.Get(ctx, r.Kind, r.Namespace, r.Name)
					cancel()
					if err != nil && !api.IsNotFound(err) {
						return fmt.Errorf("diff: read %s/%s: %w", strings.ToLower(r.Kind), r.Name, err)
					}
					if err == nil {
						raw, err := json.Marshal(obj)
						if err != nil {
							return fmt.Errorf("diff: encode %s/%s: %w", strings.ToLower(r.Kind), r.Name, err)
						}
						if err := writeDiffFile(filepath.Join(live, name), raw); err != nil {
							return err
						}
					}
				}
				if err := writeDiffFile(filepath.Join(merged, name), r.Object); err != nil {
					return err
				}
			}
			return runDiff(g, live, merged)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "manifest file, directory of manifests, or - for stdin")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read the manifests of -f directories' subdirectories too")
	return cmd
}

// diffFileName names an object's file as kubectl diff does:
// <group>.<version>.<Kind>.<namespace>.<name>.
func diffFileName(r api.ApplyResult) string {
	k, err := api.LookupKind(r.Kind)
	version := "v1"
	if err == nil {
		version = k.APIVersions[0]
	}
	return strings.ReplaceAll(version, "/", ".") + "." + r.Kind + "." + r.Namespace + "." + r.Name
}

// writeDiffFile writes an object as YAML without what only the server's
// bookkeeping changes (resourceVersion, generation), so that the diff
// shows what the apply changes.
func writeDiffFile(path string, raw []byte) error {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("diff: decode %s: %w", filepath.Base(path), err)
	}
	if m, ok := obj["metadata"].(map[string]any); ok {
		delete(m, "resourceVersion")
		delete(m, "generation")
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("diff: encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	return nil
}

// runDiff runs $KYB_EXTERNAL_DIFF (or $KUBECTL_EXTERNAL_DIFF, or
// `diff -u -N`) on the two directories. Its exit status 1 means
// differences: kyb diff exits 1 too; any other failure is an error.
func runDiff(g *globals, live, merged string) error {
	prog := []string{"diff", "-u", "-N"}
	for _, env := range []string{"KYB_EXTERNAL_DIFF", "KUBECTL_EXTERNAL_DIFF"} {
		if v := strings.Fields(os.Getenv(env)); len(v) > 0 {
			prog = v
			break
		}
	}
	cmd := exec.Command(prog[0], append(prog[1:], live, merged)...)
	cmd.Stdout, cmd.Stderr = g.streams.Out, g.streams.Err
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return ExitError{Code: 1} // differences, as kubectl diff says it
	}
	return fmt.Errorf("diff: run %s: %w", strings.Join(prog, " "), err)
}
