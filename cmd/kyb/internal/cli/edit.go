package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// editHeader heads the file `kyb edit` opens, as kubectl's does.
const editHeader = `# Please edit the object below. Lines beginning with a '#' are ignored,
# and an empty file aborts the edit. If saving fails, a copy of your
# changes is kept and its path printed.
`

// editorCommand is the editor `kyb edit` runs: $KYB_EDITOR, else $EDITOR,
// else vi. It may carry arguments ("code --wait").
func editorCommand() string {
	for _, env := range []string{"KYB_EDITOR", "EDITOR"} {
		if e := strings.TrimSpace(os.Getenv(env)); e != "" {
			return e
		}
	}
	return "vi"
}

func newEditCmd(g *globals) *cobra.Command {
	var ns, output string
	cmd := &cobra.Command{
		Use:   "edit (KIND NAME | TYPE/NAME)",
		Short: "Edit an object in $KYB_EDITOR or $EDITOR (default vi) and apply it with a compare-and-set on the version read",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			if len(refs) != 1 {
				return fmt.Errorf("edit: want KIND NAME or TYPE/NAME, not %q", strings.Join(args, " "))
			}
			if output != "yaml" && output != "json" {
				return fmt.Errorf("edit: -o %q: want yaml or json", output)
			}
			r := refs[0]
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				return g.edit(ctx, c, r, orDefault("", ns, r.kind), output)
			})
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "edit as yaml or json")
	return cmd
}

// edit opens the object in the editor and applies what comes back. The
// object keeps the resourceVersion read, so someone else's write in
// between is a 409, not a lost update; any failure leaves the edited copy
// in a file and says where.
func (g *globals) edit(ctx context.Context, c *client.Client, r objRef, namespace, format string) error {
	obj, err := c.Get(ctx, r.kind.Name, namespace, r.name)
	if err != nil {
		return err
	}
	var body []byte
	if format == "json" {
		body, err = json.MarshalIndent(obj, "", "    ")
	} else {
		body, err = yaml.Marshal(obj)
		body = append([]byte(editHeader), body...)
	}
	if err != nil {
		return fmt.Errorf("edit: encode %s: %w", format, err)
	}
	f, err := os.CreateTemp("", "kyb-edit-*."+format)
	if err != nil {
		return fmt.Errorf("edit: %w", err)
	}
	path := f.Name()
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("edit: write %s: %w", path, err)
	}
	keep := func(err error) error {
		return fmt.Errorf("edit %s/%s: %w\nA copy of your changes has been stored to %q", strings.ToLower(r.kind.Name), r.name, err, path)
	}
	ed := exec.CommandContext(ctx, "sh", "-c", editorCommand()+` "$1"`, "kyb-edit", path)
	ed.Stdin, ed.Stdout, ed.Stderr = g.streams.In, g.streams.Out, g.streams.Err
	if err := ed.Run(); err != nil {
		return keep(fmt.Errorf("editor %q: %w", editorCommand(), err))
	}
	edited, err := os.ReadFile(path)
	if err != nil {
		return keep(err)
	}
	if bytes.Equal(edited, body) || len(bytes.TrimSpace(stripComments(edited))) == 0 {
		os.Remove(path)
		fmt.Fprintln(g.streams.Out, "Edit cancelled, no changes made.")
		return nil
	}
	decoded, err := api.Decode(edited)
	if err != nil {
		return keep(err)
	}
	m := obj.GetObjectMeta()
	if len(decoded) != 1 || decoded[0].Kind != r.kind || decoded[0].Object.GetObjectMeta().Name != m.Name ||
		orDefault(decoded[0].Object.GetObjectMeta().Namespace, namespace, r.kind) != orDefault(m.Namespace, namespace, r.kind) {
		return keep(fmt.Errorf("the edited file must hold the one %s %q: its kind, namespace and name cannot change", r.kind.Name, m.Name))
	}
	reply, err := c.Apply(ctx, edited)
	if err != nil {
		return keep(err)
	}
	os.Remove(path)
	for _, res := range reply.Results {
		for _, w := range res.Warnings {
			fmt.Fprintf(g.streams.Err, "Warning: %s/%s: %s\n", strings.ToLower(res.Kind), res.Name, w)
		}
		if res.Action == api.ActionUnchanged {
			fmt.Fprintln(g.streams.Out, "Edit cancelled, no changes made.")
			continue
		}
		fmt.Fprintf(g.streams.Out, "%s/%s edited\n", strings.ToLower(res.Kind), res.Name)
	}
	return nil
}

// stripComments drops the lines that start with # (after blanks).
func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l...)
		}
	}
	return out
}
