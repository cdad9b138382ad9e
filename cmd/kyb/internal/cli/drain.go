package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// setUnschedulable sets a node's spec.unschedulable with a compare-and-set
// apply (the resourceVersion read), retried when someone else wrote in
// between. It reports whether anything changed.
func setUnschedulable(ctx context.Context, c *client.Client, name string, on bool) (bool, error) {
	for attempt := 0; ; attempt++ {
		obj, err := c.Get(ctx, "Node", "", name)
		if err != nil {
			return false, err
		}
		n := obj.(*api.Node)
		if n.Spec.Unschedulable == on {
			return false, nil
		}
		n.Spec.Unschedulable = on
		n.Status = api.NodeStatus{}
		b, err := json.Marshal(n)
		if err != nil {
			return false, err
		}
		_, err = c.Apply(ctx, b)
		if err == nil {
			return true, nil
		}
		if !api.IsConflict(err) || attempt >= 10 {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
}

func newCordonCmd(g *globals, name string, on bool) *cobra.Command {
	verb, done := "Mark a node unschedulable: new pods are not placed on it", "cordoned"
	if !on {
		verb, done = "Mark a node schedulable again", "uncordoned"
	}
	return &cobra.Command{
		Use:   name + " NODE",
		Short: verb,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				changed, err := setUnschedulable(ctx, c, args[0], on)
				if err != nil {
					return fmt.Errorf("%s %s: %w", name, args[0], err)
				}
				if changed {
					fmt.Fprintf(g.streams.Out, "node/%s %s\n", args[0], done)
				} else {
					fmt.Fprintf(g.streams.Out, "node/%s already %s\n", args[0], done)
				}
				return nil
			})
		},
	}
}

func newDrainCmd(g *globals) *cobra.Command {
	var (
		force    bool
		ignoreDS bool
		grace    int64
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a node, then delete its pods (each within its grace period) and wait until they are gone",
		Long: `Cordon a node, then delete its pods, each within its grace period, and wait until they are gone.
As kubectl does, drain refuses pods no controller manages (they would not come back elsewhere)
unless --force, and DaemonSet-managed pods (their controller would put them right back) unless
--ignore-daemonsets, which leaves them running.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node := args[0]
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if _, err := setUnschedulable(ctx, c, node, true); err != nil {
				return fmt.Errorf("drain %s: cordon: %w", node, err)
			}
			fmt.Fprintf(g.streams.Out, "node/%s cordoned\n", node)
			pods, err := podsOn(ctx, c, node)
			if err != nil {
				return fmt.Errorf("drain %s: %w", node, err)
			}
			var bare, daemons []string
			for _, p := range pods {
				if len(p.OwnerReferences) == 0 {
					bare = append(bare, p.Namespace+"/"+p.Name)
				}
				if isDaemonPod(p) {
					daemons = append(daemons, p.Namespace+"/"+p.Name)
				}
			}
			if len(bare) > 0 && !force {
				return fmt.Errorf("drain %s: cannot delete pods that no controller manages (they would not run elsewhere; use --force): %s", node, strings.Join(bare, ", "))
			}
			if len(daemons) > 0 {
				if !ignoreDS {
					return fmt.Errorf("drain %s: cannot delete DaemonSet-managed pods (use --ignore-daemonsets to ignore): %s", node, strings.Join(daemons, ", "))
				}
				fmt.Fprintf(g.streams.Err, "Warning: ignoring DaemonSet-managed pods: %s\n", strings.Join(daemons, ", "))
				pods = slices.DeleteFunc(pods, isDaemonPod)
			}
			for _, p := range pods {
				r := api.DeleteRequest{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, Preconditions: client.IfMatches(p.UID, "")}
				if grace >= 0 {
					r.GracePeriodSeconds = &grace
				}
				if _, err := c.Delete(ctx, r); err != nil && !api.IsNotFound(err) && !api.IsConflict(err) {
					return fmt.Errorf("drain %s: evict pod %s/%s: %w", node, p.Namespace, p.Name, err)
				}
				fmt.Fprintf(g.streams.Out, "pod/%s evicted\n", p.Name)
			}
			if err := waitDrained(ctx, c, node); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("drain %s: pods still there after %v", node, timeout)
				}
				return fmt.Errorf("drain %s: %w", node, err)
			}
			fmt.Fprintf(g.streams.Out, "node/%s drained\n", node)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&force, "force", false, "also delete pods no controller manages")
	f.BoolVar(&ignoreDS, "ignore-daemonsets", false, "drain even with DaemonSet-managed pods there, leaving them running")
	f.Int64Var(&grace, "grace-period", -1, "seconds each pod has to stop (-1: its own terminationGracePeriodSeconds)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

// waitDrained returns once no pod but DaemonSet pods is bound to node (they
// stay, as kubectl's): it lists them with the cluster's revision, then
// follows a watch from there, so no deletion is missed and nothing polls.
func waitDrained(ctx context.Context, c *client.Client, node string) error {
	sel := "spec.nodeName=" + node
	raws, rv, err := c.ListRaw(ctx, api.ListRequest{Kind: "Pod", AllNamespaces: true, FieldSelector: sel})
	if err != nil {
		return fmt.Errorf("list pods of node %s: %w", node, err)
	}
	left := map[string]bool{}
	for _, raw := range raws {
		obj, err := client.Decode("Pod", raw)
		if err != nil {
			return err
		}
		if p := obj.(*api.Pod); !isDaemonPod(p) {
			left[p.Namespace+"/"+p.Name] = true
		}
	}
	if len(left) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.WatchFrom(ctx, api.WatchRequest{Kind: "Pod", AllNamespaces: true, FieldSelector: sel, ResourceVersion: rv})
	if err != nil {
		return fmt.Errorf("watch pods of node %s: %w", node, err)
	}
	for ev := range w.Events() {
		p, ok := ev.Object.(*api.Pod)
		if !ok || isDaemonPod(p) {
			continue
		}
		key := p.Namespace + "/" + p.Name
		if ev.Type == api.EventDeleted {
			delete(left, key)
		} else {
			left[key] = true // bound meanwhile (it is cordoned: rare)
		}
		if len(left) == 0 {
			return nil
		}
	}
	if err := w.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// isDaemonPod reports whether a DaemonSet controls p.
func isDaemonPod(p *api.Pod) bool {
	ref := api.ControllerOf(p)
	return ref != nil && ref.Kind == "DaemonSet"
}

// podsOn lists the pods bound to node in every namespace.
func podsOn(ctx context.Context, c *client.Client, node string) ([]*api.Pod, error) {
	objs, _, err := c.List(ctx, api.ListRequest{Kind: "Pod", AllNamespaces: true, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, fmt.Errorf("list pods of node %s: %w", node, err)
	}
	out := make([]*api.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*api.Pod))
	}
	return out, nil
}
