package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// parseRefs reads object arguments as kubectl does: KIND NAME... or
// TYPE/NAME... (every argument in that form).
func parseRefs(args []string) ([]objRef, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if strings.Contains(args[0], "/") {
		t, err := parseTargets(args)
		return t.refs, err
	}
	kind, err := lookupKind(args[0])
	if err != nil {
		return nil, err
	}
	var refs []objRef
	for _, n := range args[1:] {
		if strings.Contains(n, "/") {
			return nil, fmt.Errorf("%q: there is no need to give a kind as a separate argument when passing arguments in TYPE/NAME form", n)
		}
		refs = append(refs, objRef{kind, n})
	}
	return refs, nil
}

// metaEdit is one change of `kyb label` or `kyb annotate`: set key to
// value, or remove key.
type metaEdit struct {
	key, value string
	remove     bool
}

// parseMetaEdits splits label/annotate arguments into objects and edits
// (key=value, key-); labels are checked as Kubernetes checks them.
func parseMetaEdits(args []string, labels bool) ([]string, []metaEdit, error) {
	var objs []string
	var edits []metaEdit
	for _, a := range args {
		var e metaEdit
		switch k, v, ok := strings.Cut(a, "="); {
		case ok:
			e = metaEdit{key: k, value: v}
		case strings.HasSuffix(a, "-") && len(objs) > 0:
			e = metaEdit{key: strings.TrimSuffix(a, "-"), remove: true}
		default:
			if len(edits) > 0 {
				return nil, nil, fmt.Errorf("%q: objects come before the key=value changes", a)
			}
			objs = append(objs, a)
			continue
		}
		if errs := validation.IsQualifiedName(e.key); len(errs) > 0 {
			return nil, nil, fmt.Errorf("invalid key %q: %s", e.key, strings.Join(errs, "; "))
		}
		if labels && !e.remove {
			if errs := validation.IsValidLabelValue(e.value); len(errs) > 0 {
				return nil, nil, fmt.Errorf("invalid label value %q of %s: %s", e.value, e.key, strings.Join(errs, "; "))
			}
		}
		edits = append(edits, e)
	}
	if len(edits) == 0 {
		return nil, nil, errors.New("at least one key=value or key- is required")
	}
	return objs, edits, nil
}

// editMeta applies edits to the labels (or annotations) of one object
// with a compare-and-set apply on the resourceVersion read, retried when
// someone wrote in between (409). Without overwrite, changing an existing
// key's value is refused, as kubectl refuses it. It reports whether
// anything changed.
func editMeta(ctx context.Context, c *client.Client, r objRef, namespace string, edits []metaEdit, labels, overwrite bool) (bool, error) {
	what := "annotation"
	if labels {
		what = "label"
	}
	for attempt := 0; ; attempt++ {
		obj, err := c.Get(ctx, r.kind.Name, namespace, r.name)
		if err != nil {
			return false, err
		}
		m := obj.GetObjectMeta()
		set := &m.Annotations
		if labels {
			set = &m.Labels
		}
		changed := false
		for _, e := range edits {
			old, had := (*set)[e.key]
			switch {
			case e.remove:
				if had {
					delete(*set, e.key)
					changed = true
				}
			case had && old == e.value:
			case had && !overwrite:
				return false, fmt.Errorf("'%s' already has a value (%s), and --overwrite is false", e.key, old)
			default:
				if *set == nil {
					*set = map[string]string{}
				}
				(*set)[e.key] = e.value
				changed = true
			}
		}
		if !changed {
			return false, nil
		}
		b, err := json.Marshal(obj) // carries the resourceVersion read: the apply is a compare-and-set
		if err != nil {
			return false, fmt.Errorf("encode %s %s: %w", strings.ToLower(r.kind.Name), r.name, err)
		}
		_, err = c.Apply(ctx, b)
		if err == nil {
			return true, nil
		}
		if !api.IsConflict(err) || attempt >= 10 {
			return false, fmt.Errorf("update %ss of %s/%s: %w", what, strings.ToLower(r.kind.Name), r.name, err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
}

func newMetaCmd(g *globals, verb string) *cobra.Command {
	labels := verb == "label"
	var (
		ns, selector   string
		overwrite, all bool
	)
	cmd := &cobra.Command{
		Use:   verb + " (KIND NAME... | TYPE/NAME... | KIND --all | KIND -l SELECTOR) KEY=VALUE... KEY-...",
		Short: fmt.Sprintf("Set (KEY=VALUE) or remove (KEY-) %ss of objects; an existing value changes only with --overwrite", verb),
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			objs, edits, err := parseMetaEdits(args, labels)
			if err != nil {
				return fmt.Errorf("%s: %w", verb, err)
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				refs, err := g.resolveRefs(ctx, c, objs, ns, selector, all)
				if err != nil {
					return fmt.Errorf("%s: %w", verb, err)
				}
				for _, r := range refs {
					changed, err := editMeta(ctx, c, r, orDefault("", ns, r.kind), edits, labels, overwrite)
					if err != nil {
						return fmt.Errorf("%s %s/%s: %w", verb, strings.ToLower(r.kind.Name), r.name, err)
					}
					done := "annotated"
					if labels {
						done = "labeled"
					}
					if !changed {
						done = "not " + done
					}
					fmt.Fprintf(g.streams.Out, "%s/%s %s\n", strings.ToLower(r.kind.Name), r.name, done)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.BoolVar(&overwrite, "overwrite", false, "change keys that already have a value")
	f.BoolVar(&all, "all", false, "every object of the kind in the namespace")
	f.StringVarP(&selector, "selector", "l", "", "the objects of the kind matching this label selector")
	return cmd
}

// resolveRefs turns arguments into objects: KIND NAME..., TYPE/NAME...,
// or KIND with --all or -l (listed now).
func (g *globals) resolveRefs(ctx context.Context, c *client.Client, args []string, ns, selector string, all bool) ([]objRef, error) {
	if all || selector != "" {
		if len(args) != 1 || strings.Contains(args[0], "/") {
			return nil, fmt.Errorf("--all and -l take one KIND and no names, not %q", strings.Join(args, " "))
		}
		kind, err := lookupKind(args[0])
		if err != nil {
			return nil, err
		}
		raws, _, err := c.ListRaw(ctx, api.ListRequest{Kind: kind.Name, Namespace: orDefault("", ns, kind), LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		refs := make([]objRef, 0, len(raws))
		for _, raw := range raws {
			var m struct {
				Metadata api.ObjectMeta `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("decode %s list: %w", kind.Name, err)
			}
			refs = append(refs, objRef{kind, m.Metadata.Name})
		}
		return refs, nil
	}
	refs, err := parseRefs(args)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, errors.New("want KIND NAME..., TYPE/NAME..., or KIND with --all or -l")
	}
	return refs, nil
}

// waitFor is a parsed --for: a condition (type and wanted status) or
// deletion.
type waitFor struct {
	condition, status string
	delete            bool
}

func parseWaitFor(s string) (waitFor, error) {
	if s == "delete" {
		return waitFor{delete: true}, nil
	}
	if c, ok := strings.CutPrefix(s, "condition="); ok && c != "" {
		typ, status, ok := strings.Cut(c, "=")
		if !ok {
			status = "True"
		}
		if typ == "" || status == "" {
			return waitFor{}, fmt.Errorf("--for %q: want condition=TYPE[=STATUS] or delete", s)
		}
		return waitFor{condition: typ, status: status}, nil
	}
	return waitFor{}, fmt.Errorf("--for %q: want condition=TYPE[=STATUS] (e.g. condition=Ready) or delete", s)
}

// met reports whether obj (nil: gone) meets w.
func (w waitFor) met(obj api.Object) (bool, error) {
	if w.delete || obj == nil {
		return w.delete && obj == nil, nil
	}
	g, err := toGeneric(obj)
	if err != nil {
		return false, err
	}
	for _, c := range evalPath([]jpStep{{kind: 'f', name: "status"}, {kind: 'f', name: "conditions"}, {kind: 'w'}}, g) {
		m, _ := c.(map[string]any)
		if t, _ := m["type"].(string); strings.EqualFold(t, w.condition) {
			s, _ := m["status"].(string)
			return strings.EqualFold(s, w.status), nil
		}
	}
	return false, nil
}

// waitOne waits until the object meets w: it reads the object and the
// cluster's revision, then watches it from there, so no change is missed.
func (g *globals) waitOne(ctx context.Context, c *client.Client, r objRef, namespace string, w waitFor) error {
	sel := "metadata.name=" + r.name
	raws, rv, err := c.ListRaw(ctx, api.ListRequest{Kind: r.kind.Name, Namespace: namespace, FieldSelector: sel, Limit: 1})
	if err != nil {
		return err
	}
	var cur api.Object
	if len(raws) > 0 {
		if cur, err = client.Decode(r.kind.Name, raws[0]); err != nil {
			return err
		}
	} else if !w.delete {
		return api.NewNotFound(r.kind.Name, r.name)
	}
	if ok, err := w.met(cur); ok || err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := c.WatchFrom(ctx, api.WatchRequest{Kind: r.kind.Name, Namespace: namespace, FieldSelector: sel, ResourceVersion: rv})
	if err != nil {
		return err
	}
	for ev := range watch.Events() {
		obj := ev.Object
		if ev.Type == api.EventDeleted {
			obj = nil
			if !w.delete {
				return fmt.Errorf("%s/%s was deleted while waiting for condition %s", strings.ToLower(r.kind.Name), r.name, w.condition)
			}
		}
		if ok, err := w.met(obj); ok || err != nil {
			return err
		}
	}
	if err := watch.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

func newWaitCmd(g *globals) *cobra.Command {
	var (
		ns, forSpec, selector string
		all                   bool
		timeout               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait (KIND NAME... | TYPE/NAME... | KIND --all | KIND -l SELECTOR) --for=condition=TYPE[=STATUS]|delete [--timeout=30s]",
		Short: "Wait until objects have a condition (condition=Ready) or are gone (delete)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := parseWaitFor(forSpec)
			if err != nil {
				return fmt.Errorf("wait: %w", err)
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			refs, err := g.resolveRefs(ctx, c, args, ns, selector, all)
			if err != nil {
				return fmt.Errorf("wait: %w", err)
			}
			for _, r := range refs {
				err := g.waitOne(ctx, c, r, orDefault("", ns, r.kind), w)
				ref := strings.ToLower(r.kind.Name) + "/" + r.name
				switch {
				case err == nil && w.delete:
					fmt.Fprintf(g.streams.Out, "%s deleted\n", ref)
				case err == nil:
					fmt.Fprintf(g.streams.Out, "%s condition met\n", ref)
				case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && cmd.Context().Err() == nil):
					return fmt.Errorf("timed out waiting for the condition on %s", ref)
				default:
					return fmt.Errorf("wait %s: %w", ref, err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVar(&forSpec, "for", "", "condition=TYPE[=STATUS] (STATUS defaults to True) or delete")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for all of them")
	f.BoolVar(&all, "all", false, "every object of the kind in the namespace")
	f.StringVarP(&selector, "selector", "l", "", "the objects of the kind matching this label selector")
	cmd.MarkFlagRequired("for")
	return cmd
}

func newAPIResourcesCmd(g *globals) *cobra.Command {
	var namespaced string
	cmd := &cobra.Command{
		Use:   "api-resources",
		Short: "List the kinds the API serves, with their short names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows := [][]string{{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"}}
			kinds := slices.Clone(api.Kinds())
			slices.SortFunc(kinds, func(a, b *api.Kind) int { return strings.Compare(a.Plural, b.Plural) })
			for _, k := range kinds {
				if namespaced != "" && fmt.Sprint(k.Namespaced) != namespaced {
					continue
				}
				var short []string
				for _, s := range k.Short {
					if s != strings.ToLower(k.Name) {
						short = append(short, s)
					}
				}
				rows = append(rows, []string{k.Plural, strings.Join(short, ","), k.APIVersions[0], fmt.Sprint(k.Namespaced), k.Name})
			}
			p := &printer{out: g.streams.Out}
			return p.writeRows(rows)
		},
	}
	cmd.Flags().StringVar(&namespaced, "namespaced", "", "only namespaced kinds (true) or cluster-scoped ones (false)")
	return cmd
}

// serverInfo asks the kyb micro service for its info ($SRV.INFO.kyb).
func serverInfo(ctx context.Context, c *client.Client) (*micro.Info, error) {
	b, err := c.Request(ctx, "$SRV.INFO."+api.ServiceName, nil)
	if err != nil {
		return nil, fmt.Errorf("ask the %s service for its info: %w", api.ServiceName, err)
	}
	var info micro.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("decode %s service info: %w", api.ServiceName, err)
	}
	return &info, nil
}

func newClusterInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster-info",
		Short: "Print where the control plane is, and its API service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				info, err := serverInfo(ctx, c)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "Kybernetes control plane is running at %s\n", c.Conn().ConnectedUrlRedacted())
				fmt.Fprintf(g.streams.Out, "API service %s %s (%s) answers on %s.>\n", info.Name, info.Version, info.ID, api.SubjectPrefix)
				return nil
			})
		},
	}
}

// versionInfo is `kyb version -o json|yaml`, in kubectl's shape.
type versionInfo struct {
	ClientVersion buildInfo  `json:"clientVersion"`
	ServerVersion *buildInfo `json:"serverVersion,omitempty"`
	// AgentVersions maps each agent version to the nodes running it.
	AgentVersions map[string][]string `json:"agentVersions,omitempty"`
}

type buildInfo struct {
	GitVersion string `json:"gitVersion"`
	GoVersion  string `json:"goVersion,omitempty"`
	Platform   string `json:"platform,omitempty"`
}

func newVersionCmd(g *globals) *cobra.Command {
	var (
		clientOnly bool
		output     string
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version, the server's and its agents'",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return fmt.Errorf("version: -o %q: want json or yaml", output)
			}
			v := versionInfo{ClientVersion: buildInfo{GitVersion: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}}
			err := func() error {
				if clientOnly {
					return nil
				}
				return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
					info, err := serverInfo(ctx, c)
					if err != nil {
						return err
					}
					v.ServerVersion = &buildInfo{GitVersion: "v" + info.Version}
					nodes, _, err := c.List(ctx, api.ListRequest{Kind: "Node"})
					if api.ReasonOf(err) == api.ReasonForbidden {
						return nil // a user who may not read nodes sees no agents
					}
					if err != nil {
						return err
					}
					v.AgentVersions = map[string][]string{}
					for _, o := range nodes {
						n := o.(*api.Node)
						av := orNone(n.Status.NodeInfo.AgentVersion)
						v.AgentVersions[av] = append(v.AgentVersions[av], n.Name)
					}
					return nil
				})
			}()
			if output != "" {
				p, perr := newPrinter(g.streams.Out, output, false)
				if perr != nil {
					return perr
				}
				if perr := p.document(v); perr != nil {
					return perr
				}
				return err
			}
			fmt.Fprintf(g.streams.Out, "Client Version: %s\n", v.ClientVersion.GitVersion)
			if v.ServerVersion != nil {
				fmt.Fprintf(g.streams.Out, "Server Version: %s\n", v.ServerVersion.GitVersion)
			}
			versions := slices.Sorted(maps.Keys(v.AgentVersions))
			for _, av := range versions {
				fmt.Fprintf(g.streams.Out, "Agent Version: %s (%s)\n", av, strings.Join(v.AgentVersions[av], ", "))
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client's version only (no server needed)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml")
	return cmd
}
