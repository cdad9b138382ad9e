package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// prune deletes, after an apply, the objects selector picks that the apply
// did not name: of the kinds the apply named, in the namespaces it applied
// to (cluster-scoped kinds everywhere), as kubectl apply --prune -l does.
// An object a controller owns (a ReplicaSet's pods) is its controller's
// business and is left alone; so is a Namespace (deleting one deletes all it
// holds, which a label match should not decide). With dryRun nothing is
// deleted: what would be is printed.
func (g *globals) prune(cmd *cobra.Command, c *client.Client, applied []api.ApplyResult, selector string, dryRun bool) error {
	named := map[string]bool{}
	scopes := map[*api.Kind]map[string]bool{} // kind -> namespaces ("" for cluster scope)
	for _, r := range applied {
		k, err := api.LookupKind(r.Kind)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		named[k.Name+"/"+r.Namespace+"/"+r.Name] = true
		if k.Name == "Namespace" {
			continue
		}
		if scopes[k] == nil {
			scopes[k] = map[string]bool{}
		}
		scopes[k][r.Namespace] = true
	}
	kinds := make([]*api.Kind, 0, len(scopes))
	for k := range scopes {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Name < kinds[j].Name })
	var failed []error
	for _, k := range kinds {
		nss := make([]string, 0, len(scopes[k]))
		for ns := range scopes[k] {
			nss = append(nss, ns)
		}
		sort.Strings(nss)
		for _, ns := range nss {
			ctx, cancel := g.reqCtx(cmd.Context())
			objs, _, err := c.List(ctx, api.ListRequest{Kind: k.Name, Namespace: ns, LabelSelector: selector})
			cancel()
			if err != nil {
				return fmt.Errorf("prune: list %s: %w", k.Plural, err)
			}
			for _, o := range objs {
				m := o.GetObjectMeta()
				if named[k.Name+"/"+m.Namespace+"/"+m.Name] || controlledBy(m) {
					continue
				}
				if dryRun {
					fmt.Fprintf(g.streams.Out, "%s/%s pruned (server dry run)\n", strings.ToLower(k.Name), m.Name)
					continue
				}
				ctx, cancel := g.reqCtx(cmd.Context())
				_, err := c.Delete(ctx, api.DeleteRequest{Kind: k.Name, Namespace: m.Namespace, Name: m.Name,
					Preconditions: &api.Preconditions{UID: &m.UID}})
				cancel()
				if err != nil && !api.IsNotFound(err) {
					failed = append(failed, fmt.Errorf("prune %s/%s: %w", strings.ToLower(k.Name), m.Name, err))
					continue
				}
				fmt.Fprintf(g.streams.Out, "%s/%s pruned\n", strings.ToLower(k.Name), m.Name)
			}
		}
	}
	return errors.Join(failed...)
}

// controlledBy reports whether a controller owns the object.
func controlledBy(m *api.ObjectMeta) bool {
	for _, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}
