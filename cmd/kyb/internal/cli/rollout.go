package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controllers/daemonset"
	"github.com/kybernetes/kybernetes/control/controllers/deployment"
	"github.com/kybernetes/kybernetes/control/controllers/statefulset"
)

var (
	deploymentKind = api.KindOf(&api.Deployment{})
	replicaSetKind = api.KindOf(&api.ReplicaSet{})
	daemonSetKind  = api.KindOf(&api.DaemonSet{})
	statefulKind   = api.KindOf(&api.StatefulSet{})
)

// errUnchanged is returned by a mutation that has nothing to change.
var errUnchanged = client.ErrUnchanged

// updateObject reads one object, lets mutate change it, and writes it
// back with a compare-and-set apply on the resourceVersion read, reading
// again when someone wrote in between (409): client.Update, which the
// dashboard's actions use too. mutate returning errUnchanged writes
// nothing; updateObject then reports false.
func updateObject(ctx context.Context, c *client.Client, kind *api.Kind, ns, name string, mutate func(api.Object) error) (bool, error) {
	return c.Update(ctx, kind.Name, ns, name, mutate)
}

// workloadRef parses TYPE/NAME or TYPE NAME of the kinds a verb takes.
func workloadRef(verb string, args []string, kinds ...*api.Kind) (objRef, error) {
	var typ, name string
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		typ, name, _ = strings.Cut(args[0], "/")
	case len(args) == 2 && !strings.Contains(args[0], "/"):
		typ, name = args[0], args[1]
	default:
		return objRef{}, fmt.Errorf("%s: want TYPE/NAME (or TYPE NAME), e.g. deployment/web", verb)
	}
	k, err := lookupKind(typ)
	if err != nil {
		return objRef{}, fmt.Errorf("%s: %w", verb, err)
	}
	for _, ok := range kinds {
		if k == ok {
			if name == "" {
				return objRef{}, fmt.Errorf("%s: a name is required", verb)
			}
			return objRef{kind: k, name: name}, nil
		}
	}
	names := make([]string, len(kinds))
	for i, ok := range kinds {
		names[i] = ok.Plural
	}
	return objRef{}, fmt.Errorf("%s: %s are not supported (only %s)", verb, k.Plural, strings.Join(names, ", "))
}

// refName prints an object as kubectl does: deployment.apps/web.
func refName(r objRef) string {
	k := strings.ToLower(r.kind.Name)
	if r.kind == deploymentKind || r.kind == replicaSetKind || r.kind == daemonSetKind || r.kind == statefulKind {
		k += ".apps"
	}
	return k + "/" + r.name
}

func newScaleCmd(g *globals) *cobra.Command {
	var ns string
	replicas := int32(-1)
	cmd := &cobra.Command{
		Use:   "scale (TYPE/NAME | TYPE NAME) --replicas=N",
		Short: "Set the number of replicas of a deployment, replicaset or statefulset",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := workloadRef("scale", args, deploymentKind, replicaSetKind, statefulKind)
			if err != nil {
				return err
			}
			if replicas < 0 {
				return errors.New("scale: --replicas=N is required and must not be negative")
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				_, err := updateObject(ctx, c, r.kind, ns, r.name, func(obj api.Object) error {
					var cur **int32
					switch o := obj.(type) {
					case *api.Deployment:
						cur = &o.Spec.Replicas
					case *api.ReplicaSet:
						cur = &o.Spec.Replicas
					case *api.StatefulSet:
						cur = &o.Spec.Replicas
					}
					if *cur != nil && **cur == replicas {
						return errUnchanged
					}
					n := replicas
					*cur = &n
					return nil
				})
				if err != nil {
					return fmt.Errorf("scale %s: %w", refName(r), err)
				}
				fmt.Fprintf(g.streams.Out, "%s scaled\n", refName(r))
				return nil
			})
		},
	}
	cmd.Flags().Int32Var(&replicas, "replicas", -1, "the new number of replicas")
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func newSetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "set", Short: "Change fields of objects (set image)"}
	var ns string
	image := &cobra.Command{
		Use:   "image (TYPE/NAME | TYPE NAME) CONTAINER=IMAGE...",
		Short: "Change the image of containers of a deployment's, replicaset's or statefulset's pod template ('*' for every container)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 1
			if !strings.Contains(args[0], "/") {
				n = 2
			}
			if len(args) <= n {
				return errors.New("set image: at least one CONTAINER=IMAGE is required")
			}
			r, err := workloadRef("set image", args[:n], deploymentKind, replicaSetKind, statefulKind)
			if err != nil {
				return err
			}
			images := map[string]string{}
			for _, a := range args[n:] {
				c, img, ok := strings.Cut(a, "=")
				if !ok || c == "" || img == "" {
					return fmt.Errorf("set image: %q: want CONTAINER=IMAGE", a)
				}
				images[c] = img
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				_, err := updateObject(ctx, c, r.kind, ns, r.name, func(obj api.Object) error {
					var spec *api.PodSpec
					switch o := obj.(type) {
					case *api.Deployment:
						spec = &o.Spec.Template.Spec
					case *api.ReplicaSet:
						spec = &o.Spec.Template.Spec
					case *api.StatefulSet:
						spec = &o.Spec.Template.Spec
					}
					return setImages(spec, images)
				})
				if err != nil {
					return fmt.Errorf("set image %s: %w", refName(r), err)
				}
				fmt.Fprintf(g.streams.Out, "%s image updated\n", refName(r))
				return nil
			})
		},
	}
	image.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.AddCommand(image)
	return cmd
}

// setImages sets the images of the named containers (and init
// containers; "*" for all); every name must exist.
func setImages(spec *api.PodSpec, images map[string]string) error {
	changed := false
	for name, img := range images {
		found := false
		for _, list := range [][]api.Container{spec.InitContainers, spec.Containers} {
			for i := range list {
				if name == "*" || list[i].Name == name {
					found = true
					if list[i].Image != img {
						list[i].Image = img
						list[i].ImagePullPolicy = "" // defaulted again for the new tag
						changed = true
					}
				}
			}
		}
		if !found {
			return fmt.Errorf("unable to find container named %q", name)
		}
	}
	if !changed {
		return errUnchanged
	}
	return nil
}

func newRolloutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Manage the rollout of a deployment: status, history, undo, pause, resume, restart"}
	var ns string
	cmd.PersistentFlags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	ref := func(verb string, args []string) (objRef, error) {
		return workloadRef("rollout "+verb, args, deploymentKind)
	}

	var watch bool
	var timeout time.Duration
	status := &cobra.Command{
		Use:   "status deployment/NAME | daemonset/NAME | statefulset/NAME",
		Short: "Show the rollout's progress; wait until it completes (or fails its progress deadline)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := workloadRef("rollout status", args, deploymentKind, daemonSetKind, statefulKind)
			if err != nil {
				return err
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			ns := orDefault("", ns, r.kind)
			sel := "metadata.name=" + r.name
			rctx, cancel := g.reqCtx(ctx)
			raws, rv, err := c.ListRaw(rctx, api.ListRequest{Kind: r.kind.Name, Namespace: ns, FieldSelector: sel, Limit: 1})
			cancel()
			if err != nil {
				return fmt.Errorf("rollout status %s: %w", refName(r), err)
			}
			if len(raws) == 0 {
				return fmt.Errorf("rollout status %s: %w", refName(r), api.NewNotFound(r.kind.Name, r.name))
			}
			obj, err := client.Decode(r.kind.Name, raws[0])
			if err != nil {
				return err
			}
			last := ""
			// show prints the state of the object and reports whether to stop.
			show := func(obj api.Object) (bool, error) {
				var msg string
				var done bool
				var err error
				switch o := obj.(type) {
				case *api.Deployment:
					msg, done, err = deployment.Describe(o)
				case *api.DaemonSet:
					msg, done, err = daemonset.Describe(o)
				case *api.StatefulSet:
					msg, done, err = statefulset.Describe(o)
				}
				if err != nil {
					return true, fmt.Errorf("rollout status: %w", err)
				}
				if msg != last {
					fmt.Fprintln(g.streams.Out, msg)
					last = msg
				}
				return done || !watch, nil
			}
			if stop, err := show(obj); stop || err != nil {
				return err
			}
			// Then every change, fed by a watch from the list's revision.
			wctx, wcancel := context.WithCancel(ctx)
			defer wcancel()
			w, err := c.WatchFrom(wctx, api.WatchRequest{Kind: r.kind.Name, Namespace: ns, FieldSelector: sel, ResourceVersion: rv})
			if err != nil {
				return fmt.Errorf("rollout status %s: %w", refName(r), err)
			}
			for ev := range w.Events() {
				if ev.Type == api.EventDeleted {
					return fmt.Errorf("rollout status: %s %q was deleted", strings.ToLower(r.kind.Name), r.name)
				}
				if stop, err := show(ev.Object); stop || err != nil {
					return err
				}
			}
			if err := w.Err(); err != nil {
				return fmt.Errorf("rollout status %s: %w", refName(r), err)
			}
			return fmt.Errorf("rollout status %s: timed out waiting for the rollout: %w", refName(r), ctx.Err())
		},
	}
	status.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout completes")
	status.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: never)")

	var revision int64
	history := &cobra.Command{
		Use:   "history deployment/NAME",
		Short: "List the deployment's revisions (--revision N shows that revision's pod template)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := ref("history", args)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				d, owned, err := deploymentAndReplicaSets(ctx, c, ns, r.name)
				if err != nil {
					return fmt.Errorf("rollout history %s: %w", refName(r), err)
				}
				if revision > 0 {
					for _, rs := range owned {
						if deployment.Revision(rs) == revision {
							t := rs.Spec.Template
							delete(t.Labels, api.LabelPodTemplateHash)
							b, err := json.MarshalIndent(t, "", "  ")
							if err != nil {
								return err
							}
							fmt.Fprintf(g.streams.Out, "%s with revision #%d\nPod Template:\n%s\n", refName(r), revision, b)
							return nil
						}
					}
					return fmt.Errorf("rollout history %s: unable to find the specified revision %d", refName(r), revision)
				}
				fmt.Fprintf(g.streams.Out, "%s\n", refName(r))
				tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
				for _, rs := range owned {
					cause := rs.Annotations[api.AnnotationChangeCause]
					if cause == "" {
						cause = "<none>"
					}
					fmt.Fprintf(tw, "%d\t%s\n", deployment.Revision(rs), cause)
				}
				_ = d
				return tw.Flush()
			})
		},
	}
	history.Flags().Int64Var(&revision, "revision", 0, "show the pod template of this revision")

	var toRevision int64
	undo := &cobra.Command{
		Use:   "undo deployment/NAME [--to-revision N]",
		Short: "Roll back to the previous revision (or revision N) by restoring its pod template",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := ref("undo", args)
			if err != nil {
				return err
			}
			if toRevision < 0 {
				return errors.New("rollout undo: --to-revision must not be negative")
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				var target int64
				changed, err := updateObject(ctx, c, deploymentKind, ns, r.name, func(obj api.Object) error {
					d := obj.(*api.Deployment)
					if d.Spec.Paused {
						return fmt.Errorf("you cannot rollback a paused deployment; resume it first with 'kyb rollout resume %s' and try again", refName(r))
					}
					rl, _, err := c.List(ctx, api.ListRequest{Kind: replicaSetKind.Name, Namespace: d.Namespace})
					if err != nil {
						return err
					}
					tmpl, rev, err := deployment.RollbackTemplate(d, deployment.Owned(d, rl), toRevision)
					if err != nil {
						return err
					}
					target = rev
					if deployment.EqualIgnoreHash(tmpl, &d.Spec.Template) {
						return errUnchanged
					}
					d.Spec.Template = *tmpl
					return nil
				})
				if err != nil {
					return fmt.Errorf("rollout undo %s: %w", refName(r), err)
				}
				if !changed {
					fmt.Fprintf(g.streams.Out, "%s skipped rollback (current template already matches revision %d)\n", refName(r), target)
					return nil
				}
				fmt.Fprintf(g.streams.Out, "%s rolled back\n", refName(r))
				return nil
			})
		},
	}
	undo.Flags().Int64Var(&toRevision, "to-revision", 0, "the revision to roll back to (default: the previous one)")

	simpleOf := func(verb, short, done string, kinds []*api.Kind, mutate func(obj api.Object) error) *cobra.Command {
		use := make([]string, len(kinds))
		for i, k := range kinds {
			use[i] = strings.ToLower(k.Name) + "/NAME"
		}
		return &cobra.Command{
			Use:   verb + " " + strings.Join(use, " | "),
			Short: short,
			Args:  cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, err := workloadRef("rollout "+verb, args, kinds...)
				if err != nil {
					return err
				}
				return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
					changed, err := updateObject(ctx, c, r.kind, ns, r.name, mutate)
					if err != nil {
						return fmt.Errorf("rollout %s %s: %w", verb, refName(r), err)
					}
					if !changed {
						fmt.Fprintf(g.streams.Out, "%s already %s\n", refName(r), done)
						return nil
					}
					fmt.Fprintf(g.streams.Out, "%s %s\n", refName(r), done)
					return nil
				})
			},
		}
	}
	simple := func(verb, short, done string, mutate func(d *api.Deployment) error) *cobra.Command {
		return simpleOf(verb, short, done, []*api.Kind{deploymentKind}, func(obj api.Object) error { return mutate(obj.(*api.Deployment)) })
	}
	pause := simple("pause", "Stop rolling out template changes until resumed", "paused", func(d *api.Deployment) error {
		if d.Spec.Paused {
			return errUnchanged
		}
		d.Spec.Paused = true
		return nil
	})
	resume := simple("resume", "Roll out template changes again", "resumed", func(d *api.Deployment) error {
		if !d.Spec.Paused {
			return errUnchanged
		}
		d.Spec.Paused = false
		return nil
	})
	restart := simpleOf("restart", "Replace every pod through a rollout (sets the template's restartedAt annotation)", "restarted",
		[]*api.Kind{deploymentKind, daemonSetKind, statefulKind}, func(obj api.Object) error {
			var t *api.PodTemplateSpec
			switch o := obj.(type) {
			case *api.Deployment:
				if o.Spec.Paused {
					return fmt.Errorf("can't restart paused deployment (run rollout resume first)")
				}
				t = &o.Spec.Template
			case *api.DaemonSet:
				t = &o.Spec.Template
			case *api.StatefulSet:
				t = &o.Spec.Template
			}
			if t.Annotations == nil {
				t.Annotations = map[string]string{}
			}
			t.Annotations[api.AnnotationRestartedAt] = time.Now().UTC().Format(time.RFC3339Nano)
			return nil
		})
	cmd.AddCommand(status, history, undo, pause, resume, restart)
	return cmd
}

// deploymentAndReplicaSets reads a deployment and the ReplicaSets it
// controls, oldest revision first.
func deploymentAndReplicaSets(ctx context.Context, c *client.Client, ns, name string) (*api.Deployment, []*api.ReplicaSet, error) {
	obj, err := c.Get(ctx, deploymentKind.Name, ns, name)
	if err != nil {
		return nil, nil, err
	}
	d := obj.(*api.Deployment)
	rl, _, err := c.List(ctx, api.ListRequest{Kind: replicaSetKind.Name, Namespace: d.Namespace})
	if err != nil {
		return nil, nil, err
	}
	return d, deployment.Owned(d, rl), nil
}
