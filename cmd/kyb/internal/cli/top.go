package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// topOptions are the flags of `kyb top nodes|pods`, as kubectl top's.
type topOptions struct {
	ns         string
	allNS      bool
	selector   string
	containers bool
	sortBy     string
	noHeaders  bool
}

func newTopCmd(g *globals) *cobra.Command {
	var o topOptions
	top := &cobra.Command{
		Use:   "top (nodes | pods)",
		Short: "Show the CPU and memory use of nodes or pods (sampled by the agents every 10 s)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("top: name a resource: nodes or pods")
			}
			return fmt.Errorf("top: unknown resource %q: want nodes or pods", args[0])
		},
	}
	nodes := &cobra.Command{
		Use:     "nodes [NAME]",
		Aliases: []string{"node", "no"},
		Short:   "CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%) of each node (% of allocatable)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSortBy(o.sortBy); err != nil {
				return err
			}
			req := api.TopRequest{Kind: "nodes", LabelSelector: o.selector}
			if len(args) == 1 {
				req.Name = args[0]
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				reply, err := c.Top(ctx, req)
				if err != nil {
					return err
				}
				if len(reply.Nodes) == 0 {
					return fmt.Errorf("metrics not available yet (agents report every --stats-interval, 10 s by default)")
				}
				return printTopNodes(g.streams.Out, reply.Nodes, o)
			})
		},
	}
	nodes.Flags().StringVarP(&o.selector, "selector", "l", "", "label selector")
	nodes.Flags().StringVar(&o.sortBy, "sort-by", "", "sort by cpu or memory (largest first)")
	nodes.Flags().BoolVar(&o.noHeaders, "no-headers", false, "print no header line")
	pods := &cobra.Command{
		Use:     "pods [NAME]",
		Aliases: []string{"pod", "po"},
		Short:   "CPU(cores) MEMORY(bytes) of each pod, or each container with --containers",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSortBy(o.sortBy); err != nil {
				return err
			}
			req := api.TopRequest{Kind: "pods", Namespace: o.ns, AllNamespaces: o.allNS, LabelSelector: o.selector}
			if len(args) == 1 {
				req.Name = args[0]
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				reply, err := c.Top(ctx, req)
				if err != nil {
					return err
				}
				if len(reply.Pods) == 0 {
					ns := o.ns
					if ns == "" {
						ns = api.DefaultNamespace
					}
					if o.allNS {
						fmt.Fprintln(g.streams.Err, "No resources found")
					} else {
						fmt.Fprintf(g.streams.Err, "No resources found in %s namespace.\n", ns)
					}
					return nil
				}
				return printTopPods(g.streams.Out, reply.Pods, o)
			})
		},
	}
	pf := pods.Flags()
	pf.StringVarP(&o.ns, "namespace", "n", "", "namespace (default \"default\")")
	pf.BoolVarP(&o.allNS, "all-namespaces", "A", false, "pods of every namespace")
	pf.StringVarP(&o.selector, "selector", "l", "", "label selector")
	pf.BoolVar(&o.containers, "containers", false, "one line per container")
	pf.StringVar(&o.sortBy, "sort-by", "", "sort by cpu or memory (largest first)")
	pf.BoolVar(&o.noHeaders, "no-headers", false, "print no header line")
	top.AddCommand(nodes, pods)
	return top
}

// cpuString prints nanocores as millicores, as kubectl top ("250m").
func cpuString(nano uint64) string { return fmt.Sprintf("%dm", nano/1_000_000) }

// memString prints bytes in Mi as kubectl top, or Ki below 1 Mi (a wasm
// module's linear memory is often a few 64 KiB pages).
func memString(b uint64) string {
	if b > 0 && b < 1<<20 {
		return fmt.Sprintf("%dKi", b>>10)
	}
	return fmt.Sprintf("%dMi", b>>20)
}

func percent(used, total float64) string {
	if total <= 0 {
		return "<unknown>"
	}
	return fmt.Sprintf("%d%%", int64(used/total*100))
}

func checkSortBy(s string) error {
	switch s {
	case "", "cpu", "memory":
		return nil
	}
	return fmt.Errorf("--sort-by %q: want cpu or memory", s)
}

func sortUsage[T any](items []T, by string, use func(T) api.UsagePoint) {
	switch by {
	case "cpu":
		slices.SortStableFunc(items, func(a, b T) int { return cmpDesc(use(a).CPUNanoCores, use(b).CPUNanoCores) })
	case "memory":
		slices.SortStableFunc(items, func(a, b T) int { return cmpDesc(use(a).MemoryBytes, use(b).MemoryBytes) })
	}
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func printTopNodes(out io.Writer, nodes []api.NodeMetrics, o topOptions) error {
	if err := checkSortBy(o.sortBy); err != nil {
		return err
	}
	sortUsage(nodes, o.sortBy, func(n api.NodeMetrics) api.UsagePoint { return n.Usage })
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	if !o.noHeaders {
		fmt.Fprintln(w, "NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)")
	}
	for _, n := range nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n.Name, cpuString(n.Usage.CPUNanoCores),
			percent(float64(n.Usage.CPUNanoCores), float64(n.AllocatableCPUMilli)*1e6),
			memString(n.Usage.MemoryBytes), percent(float64(n.Usage.MemoryBytes), float64(n.AllocatableMemoryBytes)))
	}
	return w.Flush()
}

func printTopPods(out io.Writer, pods []api.PodMetrics, o topOptions) error {
	if err := checkSortBy(o.sortBy); err != nil {
		return err
	}
	sortUsage(pods, o.sortBy, func(p api.PodMetrics) api.UsagePoint { return p.Usage })
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	var head []string
	if o.allNS {
		head = append(head, "NAMESPACE")
	}
	if o.containers {
		head = append(head, "POD", "NAME")
	} else {
		head = append(head, "NAME")
	}
	head = append(head, "CPU(cores)", "MEMORY(bytes)")
	if !o.noHeaders {
		fmt.Fprintln(w, strings.Join(head, "\t"))
	}
	for _, p := range pods {
		var lead []string
		if o.allNS {
			lead = append(lead, p.Namespace)
		}
		if !o.containers {
			fmt.Fprintln(w, strings.Join(append(lead, p.Name, cpuString(p.Usage.CPUNanoCores), memString(p.Usage.MemoryBytes)), "\t"))
			continue
		}
		for _, c := range p.Containers {
			fmt.Fprintln(w, strings.Join(append(slices.Clone(lead), p.Name, c.Name, cpuString(c.CPUNanoCores), memString(c.MemoryBytes)), "\t"))
		}
	}
	return w.Flush()
}
