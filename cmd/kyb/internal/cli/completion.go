package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
)

// completionTimeout bounds the API calls of a shell completion: a tab
// press must not hang on an unreachable server.
const completionTimeout = 2 * time.Second

// completeNames returns the names of kind's objects starting with prefix,
// in the namespace of cmd's -n flag; nothing when the server cannot say.
func (g *globals) completeNames(cmd *cobra.Command, kind *api.Kind, prefix string) []string {
	ns, _ := cmd.Flags().GetString("namespace")
	c, nc, err := g.connect()
	if err != nil {
		return nil
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	objs, _, err := c.List(ctx, api.ListRequest{Kind: kind.Name, Namespace: orDefault("", ns, kind)})
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range objs {
		if n := o.GetObjectMeta().Name; strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// kindNames are the plural names of every kind, for completing a KIND.
func kindNames(prefix string) []string {
	var out []string
	for _, k := range api.Kinds() {
		if strings.HasPrefix(k.Plural, prefix) {
			out = append(out, k.Plural)
		}
	}
	return out
}

// completeObjects completes kubectl-style object arguments: a KIND first
// (or TYPE/NAME), then names of that kind.
func (g *globals) completeObjects(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	noFiles := cobra.ShellCompDirectiveNoFileComp
	if typ, prefix, ok := strings.Cut(toComplete, "/"); ok {
		k, err := api.LookupKind(typ)
		if err != nil {
			return nil, noFiles
		}
		var out []string
		for _, n := range g.completeNames(cmd, k, prefix) {
			out = append(out, typ+"/"+n)
		}
		return out, noFiles
	}
	if len(args) == 0 {
		return kindNames(toComplete), noFiles
	}
	if strings.Contains(args[0], "/") || strings.Contains(args[0], ",") {
		return nil, noFiles
	}
	k, err := api.LookupKind(args[0])
	if err != nil {
		return nil, noFiles
	}
	return g.completeNames(cmd, k, toComplete), noFiles
}

// completePods completes a pod's name.
func (g *globals) completePods(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return g.completeNames(cmd, podKind(), toComplete), cobra.ShellCompDirectiveNoFileComp
}

// addCompletions wires completion of objects, pods and namespaces into
// root's commands (cobra's `kyb completion bash|zsh|fish|powershell`
// prints the shell's script).
func (g *globals) addCompletions(root *cobra.Command) {
	nsKind, _ := api.LookupKind("Namespace")
	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "get", "describe", "delete", "label", "annotate", "wait", "edit":
			cmd.ValidArgsFunction = g.completeObjects
		case "logs":
			cmd.ValidArgsFunction = g.completePods
		}
		if cmd.Flags().Lookup("namespace") != nil {
			_ = cmd.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return g.completeNames(cmd, nsKind, toComplete), cobra.ShellCompDirectiveNoFileComp
			})
		}
	}
}
