package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// ExitError ends kyb with Code and prints nothing more: a command that
// answers by its exit status (`kyb auth can-i` says "no" with 1).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

func newAuthCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Inspect authorization",
	}
	cmd.AddCommand(newCanICmd(g))
	return cmd
}

func newCanICmd(g *globals) *cobra.Command {
	var (
		ns    string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "can-i VERB KIND[/NAME] [NAME]",
		Short: "Check whether you may do VERB on KIND: prints yes (exit 0) or no (exit 1)",
		Long: `Ask the apiserver whether the user of your credentials may do VERB
(get, list, watch, create, update, delete, or *) on KIND (a kind's name,
plural or short name, a subresource such as pods/log, or modules), in the
namespace of -n (default "default"), optionally on the object NAME.`,
		Example: `  kyb auth can-i create pods
  kyb auth can-i delete pod/web -n shop
  kyb auth can-i get pods/log
  kyb auth can-i '*' '*'`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.AuthzRequest{Verb: args[0], Kind: args[1], Namespace: ns}
			if len(args) == 3 {
				req.Name = args[2]
			} else if kind, name, ok := strings.Cut(args[1], "/"); ok {
				// KIND/NAME, unless the part after the slash is a subresource.
				if _, err := api.LookupKind(kind); err == nil && !isSubresource(name) {
					req.Kind, req.Name = kind, name
				}
			}
			var r *api.AuthzReply
			err := g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) (err error) {
				r, err = c.CanI(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if !quiet {
				if r.Allowed {
					fmt.Fprintln(g.streams.Out, "yes")
				} else {
					fmt.Fprintln(g.streams.Out, "no")
				}
			}
			if !r.Allowed {
				return ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing; answer by the exit status only")
	return cmd
}

// isSubresource reports whether s names a subresource kyb serves or
// Kubernetes knows (pods/log, deployments/scale), rather than an object.
func isSubresource(s string) bool {
	switch s {
	case "log", "status", "scale", "exec", "binding", "eviction":
		return true
	}
	return false
}
