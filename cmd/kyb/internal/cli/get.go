package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// getOptions are the flags of `kyb get`.
type getOptions struct {
	ns, selector, fieldSel, output, sortBy string
	allNS, watch, showLabels               bool
	labelCols                              []string
}

func newGetCmd(g *globals) *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use: "get (KIND[,KIND...] [NAME...] | KIND/NAME...)",
		Short: "List objects of kinds, or show some (kinds by name, plural or short name: po, no, ns; " +
			"several with commas: roles,rolebindings; all: the workload kinds; or TYPE/NAME: pods/web)",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (args[0] == "servers" || args[0] == "server") {
				// Servers are no API object: the cluster's status lists them.
				return g.clusterStatus(cmd.Context(), o.output, true)
			}
			t, err := parseTargets(args)
			if err != nil {
				return err
			}
			if o.watch && (t.all || len(t.names) > 1 || len(t.refs) > 0) {
				return fmt.Errorf("get --watch: needs one kind and at most one NAME, not %q", strings.Join(args, " "))
			}
			newP := func() (*printer, error) {
				p, err := newPrinter(g.streams.Out, o.output, o.allNS)
				if err != nil {
					return nil, err
				}
				p.showLabels, p.labelCols = o.showLabels, o.labelCols
				return p, p.setSortBy(o.sortBy)
			}
			if _, err := newP(); err != nil { // bad flags fail before connecting
				return err
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if len(t.refs) > 0 {
				return g.getRefs(cmd, c, newP, t.refs, o)
			}
			if t.all {
				return g.getKinds(cmd, c, newP, t.kinds, t.all, o)
			}
			if len(t.names) > 0 && !o.watch {
				refs := make([]objRef, len(t.names))
				for i, n := range t.names {
					refs[i] = objRef{t.kinds[0], n}
				}
				return g.getRefs(cmd, c, newP, refs, o)
			}
			return g.getOne(cmd, c, newP, t.kinds[0], t.names, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ns, "namespace", "n", "", "namespace (default \"default\")")
	f.BoolVarP(&o.allNS, "all-namespaces", "A", false, "list across all namespaces")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	f.StringVar(&o.fieldSel, "field-selector", "", "field selector, e.g. spec.nodeName=node-1")
	f.StringVarP(&o.output, "output", "o", "", "output format: "+outputFormats)
	f.StringVar(&o.sortBy, "sort-by", "", "sort by a JSONPath field, e.g. .metadata.creationTimestamp")
	f.BoolVar(&o.showLabels, "show-labels", false, "print every label in a last LABELS column")
	f.StringSliceVarP(&o.labelCols, "label-columns", "L", nil, "print these labels' values as columns, e.g. -L app,tier")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, watch for changes")
	return cmd
}

// objRef is one object named on the command line.
type objRef struct {
	kind *api.Kind
	name string
}

// getTargets is what `get` was asked for: kinds and names, or TYPE/NAME
// references.
type getTargets struct {
	kinds []*api.Kind
	names []string
	refs  []objRef
	all   bool // the kinds came from a list (pod,node) or `all`: names print as kind/name
}

// allKinds are the kinds `kyb get all` lists, those of kubectl's "all"
// category that kyb has, in kubectl's order.
var allKinds = []string{"Pod", "Service", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet", "Job", "CronJob"}

// parseTargets reads get's arguments the way kubectl does: `KIND[,KIND]
// [NAME...]`, `all`, or only TYPE/NAME forms (`pods/web node/n1`).
func parseTargets(args []string) (getTargets, error) {
	var t getTargets
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || typ == "" || name == "" || strings.Contains(typ, ",") {
				return t, fmt.Errorf("get: %q: when one argument is TYPE/NAME every one must be (e.g. pods/web nodes/n1)", a)
			}
			k, err := lookupKind(typ)
			if err != nil {
				return t, err
			}
			t.refs = append(t.refs, objRef{k, name})
		}
		return t, nil
	}
	for _, a := range args[1:] {
		if strings.Contains(a, "/") {
			return t, fmt.Errorf("get: %q: there is no need to give a kind as a separate argument when passing arguments in TYPE/NAME form", a)
		}
	}
	kinds, err := lookupKinds(args[0])
	if err != nil {
		return t, err
	}
	t.kinds, t.names = kinds, args[1:]
	t.all = len(kinds) > 1 || args[0] == "all"
	if t.all && len(t.names) > 0 {
		return t, fmt.Errorf("get: NAMEs need exactly one kind, not %q (use TYPE/NAME forms: pods/a nodes/b)", args[0])
	}
	return t, nil
}

// lookupKind resolves a kind's name, plural or short name.
func lookupKind(name string) (*api.Kind, error) {
	return api.LookupKind(strings.TrimSpace(name))
}

// namespaceFor is the namespace a request for kind uses.
func (o getOptions) namespaceFor(kind *api.Kind) string {
	switch {
	case !kind.Namespaced:
		return ""
	case o.ns == "" && !o.allNS:
		return api.DefaultNamespace
	}
	return o.ns
}

// noResources says on stderr that nothing matched, as kubectl does.
func (g *globals) noResources(o getOptions, kind *api.Kind) {
	if kind != nil && kind.Namespaced && !o.allNS {
		fmt.Fprintf(g.streams.Err, "No resources found in %s namespace.\n", o.namespaceFor(kind))
		return
	}
	fmt.Fprintln(g.streams.Err, "No resources found")
}

// getOne lists one kind (or shows one object, with --watch) and watches
// it if asked.
func (g *globals) getOne(cmd *cobra.Command, c *client.Client, newP func() (*printer, error), kind *api.Kind, names []string, o getOptions) error {
	p, err := newP()
	if err != nil {
		return err
	}
	namespace := o.namespaceFor(kind)
	req := api.ListRequest{Kind: kind.Name, Namespace: namespace, AllNamespaces: o.allNS, LabelSelector: o.selector, FieldSelector: o.fieldSel}
	wreq := api.WatchRequest{Kind: kind.Name, Namespace: namespace, AllNamespaces: o.allNS, LabelSelector: o.selector, FieldSelector: o.fieldSel}
	if len(names) == 1 {
		// One object: the server filters by name.
		req.FieldSelector, req.LabelSelector = "metadata.name="+names[0], ""
		wreq.FieldSelector, wreq.LabelSelector = req.FieldSelector, ""
	}
	ctx, cancel := g.reqCtx(cmd.Context())
	objs, rv, err := c.List(ctx, req)
	cancel()
	if err != nil {
		return err
	}
	if len(names) == 1 && len(objs) == 0 {
		return api.NewNotFound(kind.Name, names[0])
	}
	switch {
	case o.watch && p.structured():
		// Watching, each object prints as itself (kubectl -w -o json).
		for _, obj := range objs {
			if err := p.printObject(kind, obj); err != nil {
				return err
			}
		}
	case len(objs) == 0 && !p.structured():
		g.noResources(o, kind)
	default:
		if err := p.print(kind, objs); err != nil {
			return err
		}
	}
	if !o.watch {
		return nil
	}
	wreq.ResourceVersion = rv
	w, err := c.WatchFrom(cmd.Context(), wreq)
	if err != nil {
		return err
	}
	for ev := range w.Events() {
		if err := p.printObject(kind, ev.Object); err != nil {
			return err
		}
	}
	if err := w.Err(); err != nil {
		return err
	}
	return cmd.Context().Err()
}

// getRefs shows named objects: one alone prints as itself, several as a
// List (or one table per kind). A missing one is reported on stderr and
// the others still print; the command then fails, as kubectl's does.
func (g *globals) getRefs(cmd *cobra.Command, c *client.Client, newP func() (*printer, error), refs []objRef, o getOptions) error {
	var items []printItem
	var failed []error
	for _, r := range refs {
		ctx, cancel := g.reqCtx(cmd.Context())
		obj, err := c.Get(ctx, r.kind.Name, o.namespaceFor(r.kind), r.name)
		cancel()
		if err != nil {
			if !api.IsNotFound(err) {
				return err
			}
			fmt.Fprintf(g.streams.Err, "Error from server (NotFound): %v\n", err)
			failed = append(failed, err)
			continue
		}
		items = append(items, printItem{r.kind, obj})
	}
	if err := g.printGroups(newP, items, len(refs) == 1, multiKind(refs)); err != nil {
		return err
	}
	return notFoundErr(failed)
}

func multiKind(refs []objRef) bool {
	for _, r := range refs {
		if r.kind != refs[0].kind {
			return true
		}
	}
	return false
}

// notFoundErr is the error a command that went on past not-found objects
// ends with: nil when none was missing.
func notFoundErr(failed []error) error {
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return failed[0]
	}
	return &api.Status{Code: 404, Reason: api.ReasonNotFound, Message: fmt.Sprintf("%d objects not found", len(failed))}
}

// printGroups prints items of one or more kinds: structured formats as one
// document (the object alone when single), tables one per kind with a
// blank line between them, names as kind/name when withKind.
func (g *globals) printGroups(newP func() (*printer, error), items []printItem, single, withKind bool) error {
	p, err := newP()
	if err != nil {
		return err
	}
	if p.structured() || p.format == "custom-columns" {
		if len(items) == 0 && (single || !p.structured()) {
			return nil // the one object asked for is missing: only the error
		}
		return p.printItems(items, single)
	}
	var order []*api.Kind
	byKind := map[*api.Kind][]printItem{}
	for _, it := range items {
		if _, ok := byKind[it.kind]; !ok {
			order = append(order, it.kind)
		}
		byKind[it.kind] = append(byKind[it.kind], it)
	}
	for i, k := range order {
		if i > 0 {
			fmt.Fprintln(g.streams.Out)
			if p, err = newP(); err != nil {
				return err
			}
		}
		p.withKind = withKind
		if err := p.printItems(byKind[k], false); err != nil {
			return err
		}
	}
	return nil
}

// lookupKinds resolves a comma-separated list of kind names, as kubectl
// takes `roles,rolebindings`; `all` is every kind of allKinds kyb has.
func lookupKinds(list string) ([]*api.Kind, error) {
	if list == "all" {
		var kinds []*api.Kind
		for _, n := range allKinds {
			if k, err := api.LookupKind(n); err == nil {
				kinds = append(kinds, k)
			}
		}
		return kinds, nil
	}
	var kinds []*api.Kind
	for _, name := range strings.Split(list, ",") {
		k, err := lookupKind(name)
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// getKinds lists several kinds, one table each as kubectl does (empty
// kinds print nothing), or one List of them all.
func (g *globals) getKinds(cmd *cobra.Command, c *client.Client, newP func() (*printer, error), kinds []*api.Kind, withKind bool, o getOptions) error {
	var items []printItem
	for _, kind := range kinds {
		ctx, cancel := g.reqCtx(cmd.Context())
		objs, _, err := c.List(ctx, api.ListRequest{Kind: kind.Name, Namespace: o.namespaceFor(kind), AllNamespaces: o.allNS, LabelSelector: o.selector, FieldSelector: o.fieldSel})
		cancel()
		if err != nil {
			return err
		}
		for _, obj := range objs {
			items = append(items, printItem{kind, obj})
		}
	}
	p, err := newP()
	if err != nil {
		return err
	}
	if len(items) == 0 && !p.structured() {
		g.noResources(o, nil)
		return nil
	}
	return g.printGroups(newP, items, false, withKind)
}

func newDeleteCmd(g *globals) *cobra.Command {
	var (
		ns, selector string
		files        []string
		recursive    bool
		grace        int64
		cascade      string
		all          bool
	)
	cmd := &cobra.Command{
		Use: "delete (KIND NAME... | TYPE/NAME... | KIND --all | KIND -l SELECTOR | -f FILE)",
		Short: "Delete objects by kind and name, or those named in manifests; " +
			"a missing one is reported and the rest still deleted",
		RunE: func(cmd *cobra.Command, args []string) error {
			var reqs []api.DeleteRequest
			switch {
			case len(files) > 0 && (len(args) > 0 || all || selector != ""):
				return fmt.Errorf("delete: give either KIND NAME, --all, -l or -f, not several")
			case len(files) > 0:
				docs, err := readManifests(files, g.streams.In, recursive)
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
			case all || selector != "":
				// Listed once connected, below.
			case len(args) >= 2 || (len(args) == 1 && strings.Contains(args[0], "/")):
				refs, err := parseRefs(args)
				if err != nil {
					return fmt.Errorf("delete: %w", err)
				}
				for _, r := range refs {
					reqs = append(reqs, api.DeleteRequest{Kind: r.kind.Name, Namespace: orDefault("", ns, r.kind), Name: r.name})
				}
			default:
				return fmt.Errorf("delete: want KIND NAME..., TYPE/NAME..., KIND --all, KIND -l SELECTOR or -f FILE")
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if all || selector != "" {
				ctx, cancel := g.reqCtx(cmd.Context())
				refs, err := g.resolveRefs(ctx, c, args, ns, selector, all)
				cancel()
				if err != nil {
					return fmt.Errorf("delete: %w", err)
				}
				if len(refs) == 0 {
					fmt.Fprintln(g.streams.Err, "No resources found")
				}
				for _, r := range refs {
					reqs = append(reqs, api.DeleteRequest{Kind: r.kind.Name, Namespace: orDefault("", ns, r.kind), Name: r.name})
				}
			}
			policy, err := cascadePolicy(cascade)
			if err != nil {
				return err
			}
			var missing []error
			for _, r := range reqs {
				if cmd.Flags().Changed("grace-period") {
					r.GracePeriodSeconds = &grace
				}
				if r.Kind != "Pod" {
					r.PropagationPolicy = policy
				}
				ctx, cancel := g.reqCtx(cmd.Context())
				_, err := c.Delete(ctx, r)
				cancel()
				if api.IsNotFound(err) {
					// kubectl goes on past a missing object and fails at the end.
					fmt.Fprintf(g.streams.Err, "Error from server (NotFound): %v\n", err)
					missing = append(missing, err)
					continue
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "%s/%s deleted\n", lower(r.Kind), r.Name)
			}
			return notFoundErr(missing)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringSliceVarP(&files, "filename", "f", nil, "delete the objects named in these manifests")
	f.BoolVarP(&recursive, "recursive", "R", false, "read the manifests of -f directories' subdirectories too")
	f.Int64Var(&grace, "grace-period", 0, "seconds a pod gets to stop (overrides its terminationGracePeriodSeconds)")
	f.StringVar(&cascade, "cascade", "background", "what happens to the objects it owns: background (deleted after it), foreground (deleted before it) or orphan (kept, no longer owned)")
	f.BoolVar(&all, "all", false, "delete every object of the kind in the namespace")
	f.StringVarP(&selector, "selector", "l", "", "delete the objects of the kind matching this label selector")
	return cmd
}

// cascadePolicy maps --cascade to a propagation policy, as kubectl does
// (true and false are its old spellings of background and orphan).
func cascadePolicy(v string) (string, error) {
	switch strings.ToLower(v) {
	case "background", "true", "":
		return api.DeletePropagationBackground, nil
	case "foreground":
		return api.DeletePropagationForeground, nil
	case "orphan", "false":
		return api.DeletePropagationOrphan, nil
	}
	return "", fmt.Errorf("delete: --cascade=%q: want background, foreground or orphan", v)
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
