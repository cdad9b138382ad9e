package cli

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

func newApplyCmd(g *globals) *cobra.Command {
	var (
		files            []string
		recursive        bool
		dryRun, selector string
		prune            bool
	)
	cmd := &cobra.Command{
		Use: "apply -f FILE|DIR|- [--dry-run=server] [--prune -l SELECTOR]",
		Short: "Create or update objects from manifests (YAML or JSON, multi-document); " +
			"every document of every file is checked before any is stored",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("apply: -f is required (a file, a directory or - for stdin)")
			}
			dry, err := parseDryRun(dryRun)
			if err != nil {
				return err
			}
			if prune && selector == "" {
				return fmt.Errorf("apply: --prune needs -l SELECTOR: it deletes the objects the selector picks that the manifests no longer name")
			}
			if selector != "" && !prune {
				return fmt.Errorf("apply: -l is only used with --prune")
			}
			results, c, nc, err := g.applyManifests(cmd, files, recursive, client.ApplyOptions{DryRun: dry})
			if err != nil {
				return err
			}
			defer nc.Close()
			suffix := ""
			if dry {
				suffix = " (server dry run)"
			}
			for _, r := range results {
				for _, w := range r.Warnings {
					fmt.Fprintf(g.streams.Err, "Warning: %s/%s: %s\n", strings.ToLower(r.Kind), r.Name, w)
				}
				fmt.Fprintf(g.streams.Out, "%s/%s %s%s\n", strings.ToLower(r.Kind), r.Name, r.Action, suffix)
			}
			if prune {
				return g.prune(cmd, c, results, selector, dry)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "manifest file, directory of manifests, or - for stdin")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read the manifests of -f directories' subdirectories too")
	cmd.Flags().StringVar(&dryRun, "dry-run", "none", "server: check, admit and default every object and say what would change, storing nothing; none: apply")
	cmd.Flags().BoolVar(&prune, "prune", false, "then delete the objects -l picks, of the kinds applied and in the namespaces applied to, that the manifests did not name (objects a controller owns are left to it)")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "with --prune: the label selector of the objects this apply manages")
	return cmd
}

// parseDryRun reads --dry-run: none, or server (client, which decides
// without the server, is not offered: the server's answer is the only one
// that knows what exists).
func parseDryRun(v string) (bool, error) {
	switch v {
	case "", "none":
		return false, nil
	case "server":
		return true, nil
	case "client":
		return false, fmt.Errorf("--dry-run=client is not supported: use --dry-run=server (checked by the server, nothing stored)")
	}
	return false, fmt.Errorf("--dry-run %q: want none or server", v)
}

// applyManifests reads and checks the manifests of -f and applies them (or
// dry-runs them) through a new connection, which it leaves open, with its
// client, for what the command does next; the caller closes it.
func (g *globals) applyManifests(cmd *cobra.Command, files []string, recursive bool, opts client.ApplyOptions) ([]api.ApplyResult, *client.Client, *nats.Conn, error) {
	docs, err := readManifests(files, g.streams.In, recursive)
	if err != nil {
		return nil, nil, nil, err
	}
	batch, err := batchManifests(docs)
	if err != nil {
		return nil, nil, nil, err
	}
	c, nc, err := g.connect()
	if err != nil {
		return nil, nil, nil, err
	}
	results, err := g.applyBatch(cmd, c, docs, batch, opts)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return results, c, nc, nil
}

// applyBatch sends the manifests in one request (all or nothing), or file
// by file when they are too large for one, and returns every result.
func (g *globals) applyBatch(cmd *cobra.Command, c *client.Client, docs []manifest, batch *manifestBatch, opts client.ApplyOptions) ([]api.ApplyResult, error) {
	var requests [][]byte
	if len(batch.body) <= api.MaxRequestBytes {
		requests = [][]byte{batch.body} // all or nothing, in one request
	} else {
		fmt.Fprintf(g.streams.Err, "Warning: the manifests make %d bytes, more than one request may carry (%d): applying them file by file\n", len(batch.body), api.MaxRequestBytes)
		for _, d := range docs {
			requests = append(requests, d.data)
		}
	}
	var results []api.ApplyResult
	for _, body := range requests {
		ctx, cancel := g.reqCtx(cmd.Context())
		reply, err := c.ApplyWith(ctx, body, opts)
		cancel()
		if err != nil {
			if len(results) > 0 {
				g.printApplied(results)
			}
			return nil, fmt.Errorf("apply: %w", batch.locate(err, len(results)))
		}
		results = append(results, reply.Results...)
	}
	return results, nil
}

// printApplied prints what earlier requests applied before a later one
// failed.
func (g *globals) printApplied(results []api.ApplyResult) {
	for _, r := range results {
		fmt.Fprintf(g.streams.Out, "%s/%s %s\n", strings.ToLower(r.Kind), r.Name, r.Action)
	}
}

// manifestBatch is every document of several manifests as one JSON stream,
// with where each object came from.
type manifestBatch struct {
	body []byte
	// origin[i] is the file and the object's number within it of the
	// stream's object i+1.
	origin []objOrigin
}

type objOrigin struct {
	file string
	n    int
}

// batchManifests checks every document of every manifest (syntax, kinds,
// field types, duplicate keys) before anything is sent, reporting the
// problems of every file at once, and joins the documents into one JSON
// stream for a single apply request.
func batchManifests(docs []manifest) (*manifestBatch, error) {
	b := &manifestBatch{}
	var problems []string
	for _, d := range docs {
		decoded, err := api.Decode(d.data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", d.name, err))
			continue
		}
		parts, err := api.SplitManifest(d.data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", d.name, err))
			continue
		}
		for _, p := range parts {
			b.body = append(append(b.body, p...), '\n')
		}
		for i := range decoded {
			b.origin = append(b.origin, objOrigin{d.name, i + 1})
		}
	}
	switch len(problems) {
	case 0:
		return b, nil
	case 1:
		return nil, fmt.Errorf("apply %s (nothing was applied)", problems[0])
	}
	return nil, fmt.Errorf("apply: %d manifests have problems (nothing was applied):\n  %s", len(problems), strings.Join(problems, "\n  "))
}

var documentRE = regexp.MustCompile(`documents? (\d+)(-\d+)?`)

// locate rewrites the server's "document N" (N counting the objects of the
// whole request, offset counting those of earlier requests) as the file
// and the object's number within it.
func (b *manifestBatch) locate(err error, offset int) error {
	st, ok := err.(*api.Status)
	if !ok || len(b.origin) == 0 {
		return err
	}
	cp := *st
	cp.Message = documentRE.ReplaceAllStringFunc(st.Message, func(m string) string {
		sub := documentRE.FindStringSubmatch(m)
		if sub[2] != "" {
			return m // a range (documents 1-3 were applied): leave it
		}
		n, _ := strconv.Atoi(sub[1])
		if i := offset + n - 1; i >= 0 && i < len(b.origin) {
			return fmt.Sprintf("%s document %d", b.origin[i].file, b.origin[i].n)
		}
		return m
	})
	return &cp
}

type manifest struct {
	name string
	data []byte
}

// readManifests reads each -f argument: a file, every .yaml/.yml/.json file of
// a directory (sorted; with recursive, of its subdirectories too, as
// kubectl's -R), or stdin for "-".
func readManifests(args []string, stdin io.Reader, recursive bool) ([]manifest, error) {
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
		names, subdirs, err := manifestFiles(a, recursive)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			if subdirs && !recursive {
				return nil, fmt.Errorf("read manifests: no .yaml, .yml or .json file in %s (its subdirectories are read with -R)", a)
			}
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

// manifestFiles lists the manifest files of dir, sorted (beneath it too
// when recursive), and whether dir has subdirectories.
func manifestFiles(dir string, recursive bool) (names []string, subdirs bool, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read manifests in %s: %w", dir, err)
		}
		if d.IsDir() {
			if path == dir {
				return nil
			}
			subdirs = true
			if !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(d.Name())) {
		case ".yaml", ".yml", ".json":
			if d.Type().IsRegular() {
				names = append(names, path)
			}
		}
		return nil
	})
	sort.Strings(names)
	return names, subdirs, err
}
