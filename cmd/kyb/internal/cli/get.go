package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

func newGetCmd(g *globals) *cobra.Command {
	var (
		ns, selector, fieldSel, output string
		allNS, watch                   bool
	)
	cmd := &cobra.Command{
		Use:   "get KIND[,KIND...] [NAME]",
		Short: "List objects of kinds, or show one (kinds by name, plural or short name: po, no, ns; several with commas: roles,rolebindings)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := lookupKinds(args[0])
			if err != nil {
				return err
			}
			if len(kinds) > 1 && (len(args) == 2 || watch) {
				return fmt.Errorf("get: a NAME or --watch needs exactly one kind, not %q", args[0])
			}
			kind := kinds[0]
			p, err := newPrinter(g.streams.Out, output, allNS)
			if err != nil {
				return err
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if len(kinds) > 1 {
				return g.getKinds(cmd, c, kinds, output, api.ListRequest{Namespace: ns, AllNamespaces: allNS, LabelSelector: selector, FieldSelector: fieldSel})
			}
			namespace := ns
			if kind.Namespaced && namespace == "" && !allNS {
				namespace = api.DefaultNamespace
			}
			if !kind.Namespaced {
				namespace = ""
			}
			var rv string // the revision the watch starts after
			if len(args) == 2 {
				ctx, cancel := g.reqCtx(cmd.Context())
				defer cancel()
				if watch {
					// The cluster's revision before the get (not the
					// object's, which may be older than the server's
					// history): the watch misses nothing after it.
					if _, rv, err = c.ListRaw(ctx, api.ListRequest{Kind: kind.Name, Namespace: namespace, FieldSelector: "metadata.name=" + args[1], Limit: 1}); err != nil {
						return err
					}
				}
				obj, err := c.Get(ctx, kind.Name, namespace, args[1])
				if err != nil {
					return err
				}
				if err := p.print(kind, []api.Object{obj}); err != nil {
					return err
				}
			} else {
				ctx, cancel := g.reqCtx(cmd.Context())
				objs, listRV, err := c.List(ctx, api.ListRequest{Kind: kind.Name, Namespace: namespace, AllNamespaces: allNS, LabelSelector: selector, FieldSelector: fieldSel})
				cancel()
				if err != nil {
					return err
				}
				rv = listRV
				if len(objs) == 0 && !watch && (output == "" || output == "wide") {
					if kind.Namespaced && !allNS {
						fmt.Fprintf(g.streams.Err, "No resources found in %s namespace.\n", namespace)
					} else {
						fmt.Fprintln(g.streams.Err, "No resources found")
					}
					return nil
				}
				if len(objs) > 0 || output == "json" || output == "yaml" {
					if err := p.print(kind, objs); err != nil {
						return err
					}
				}
			}
			if !watch {
				return nil
			}
			req := api.WatchRequest{Kind: kind.Name, Namespace: namespace, AllNamespaces: allNS,
				LabelSelector: selector, FieldSelector: fieldSel, ResourceVersion: rv}
			if len(args) == 2 {
				// One object: the server filters by name.
				req.FieldSelector, req.LabelSelector = "metadata.name="+args[1], ""
			}
			w, err := c.WatchFrom(cmd.Context(), req)
			if err != nil {
				return err
			}
			for ev := range w.Events() {
				if err := p.print(kind, []api.Object{ev.Object}); err != nil {
					return err
				}
			}
			if err := w.Err(); err != nil {
				return err
			}
			return cmd.Context().Err()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.BoolVarP(&allNS, "all-namespaces", "A", false, "list across all namespaces")
	f.StringVarP(&selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	f.StringVar(&fieldSel, "field-selector", "", "field selector, e.g. spec.nodeName=node-1")
	f.StringVarP(&output, "output", "o", "", "output format: wide, yaml, json or name")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, watch for changes")
	return cmd
}

// lookupKinds resolves a comma-separated list of kind names, as kubectl
// takes `roles,rolebindings`.
func lookupKinds(list string) ([]*api.Kind, error) {
	var kinds []*api.Kind
	for _, name := range strings.Split(list, ",") {
		k, err := api.LookupKind(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// getKinds lists several kinds, one table each, as kubectl does; empty
// kinds print nothing.
func (g *globals) getKinds(cmd *cobra.Command, c *client.Client, kinds []*api.Kind, output string, req api.ListRequest) error {
	printed := false
	for _, kind := range kinds {
		r := req
		r.Kind = kind.Name
		switch {
		case !kind.Namespaced:
			r.Namespace = ""
		case r.Namespace == "" && !r.AllNamespaces:
			r.Namespace = api.DefaultNamespace
		}
		ctx, cancel := g.reqCtx(cmd.Context())
		objs, _, err := c.List(ctx, r)
		cancel()
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			continue
		}
		p, err := newPrinter(g.streams.Out, output, r.AllNamespaces)
		if err != nil {
			return err
		}
		if printed && (output == "" || output == "wide") {
			fmt.Fprintln(g.streams.Out)
		}
		if err := p.print(kind, objs); err != nil {
			return err
		}
		printed = true
	}
	if !printed {
		fmt.Fprintln(g.streams.Err, "No resources found")
	}
	return nil
}

func newDeleteCmd(g *globals) *cobra.Command {
	var (
		ns    string
		files []string
		grace int64
	)
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | -f FILE)",
		Short: "Delete objects by kind and name, or those named in manifests",
		RunE: func(cmd *cobra.Command, args []string) error {
			var reqs []api.DeleteRequest
			switch {
			case len(files) > 0 && len(args) > 0:
				return fmt.Errorf("delete: give either KIND NAME or -f, not both")
			case len(files) > 0:
				docs, err := readManifests(files, g.streams.In)
				if err != nil {
					return err
				}
				for _, d := range docs {
					decoded, err := api.Decode(d.data)
					if err != nil {
						return fmt.Errorf("delete -f %s: %w", d.name, err)
					}
					for _, o := range decoded {
						m := o.Object.GetObjectMeta()
						reqs = append(reqs, api.DeleteRequest{Kind: o.Kind.Name, Namespace: orDefault(m.Namespace, ns, o.Kind), Name: m.Name})
					}
				}
			case len(args) >= 2:
				kind, err := api.LookupKind(args[0])
				if err != nil {
					return err
				}
				for _, n := range args[1:] {
					reqs = append(reqs, api.DeleteRequest{Kind: kind.Name, Namespace: orDefault("", ns, kind), Name: n})
				}
			default:
				return fmt.Errorf("delete: want KIND NAME... or -f FILE")
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			for _, r := range reqs {
				if cmd.Flags().Changed("grace-period") {
					r.GracePeriodSeconds = &grace
				}
				ctx, cancel := g.reqCtx(cmd.Context())
				_, err := c.Delete(ctx, r)
				cancel()
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "%s/%s deleted\n", lower(r.Kind), r.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "delete the objects named in these manifests")
	cmd.Flags().Int64Var(&grace, "grace-period", 0, "seconds a pod gets to stop (overrides its terminationGracePeriodSeconds)")
	return cmd
}

func orDefault(objNS, flagNS string, kind *api.Kind) string {
	if !kind.Namespaced {
		return ""
	}
	if objNS != "" {
		return objNS
	}
	if flagNS != "" {
		return flagNS
	}
	return api.DefaultNamespace
}
