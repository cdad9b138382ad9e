package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
)

func newExplainCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "explain KIND[.FIELD...]",
		Short: "Describe a kind or a field of it (pod.spec.containers.image): its type, what it means, and its fields",
		Example: "  kyb explain pods\n  kyb explain deployment.spec.strategy\n" +
			"  kyb explain pod.spec.containers --recursive",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := api.Explain(args[0], recursive)
			if err != nil {
				return fmt.Errorf("explain: %w", err)
			}
			fmt.Fprint(g.streams.Out, text)
			return nil
		},
	}
	cmd.Flags().BoolVar(&recursive, "recursive", false, "list every field beneath, with its type")
	return cmd
}
