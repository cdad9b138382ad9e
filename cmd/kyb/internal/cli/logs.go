package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/runtimes"
)

// logSource is one container whose output `kyb logs` prints.
type logSource struct {
	pod, container string
}

func newLogsCmd(g *globals) *cobra.Command {
	var (
		ns, container, selector string
		follow, timestamps      bool
		prefix, previous        bool
		tail                    int
		since                   time.Duration
		sinceTime               string
	)
	cmd := &cobra.Command{
		Use:   "logs (POD | pod/POD | -l SELECTOR)",
		Short: "Print a container's (or module's) output, from the logs stream; with -l, that of every pod selected",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (selector != "") {
				return fmt.Errorf("logs: give either a POD or -l SELECTOR")
			}
			var start *time.Time
			switch {
			case since != 0 && sinceTime != "":
				return fmt.Errorf("logs: give --since or --since-time, not both")
			case since < 0:
				return fmt.Errorf("logs: --since %v: must be positive", since)
			case since > 0:
				t := time.Now().Add(-since)
				start = &t
			case sinceTime != "":
				t, err := time.Parse(time.RFC3339, sinceTime)
				if err != nil {
					return fmt.Errorf("logs: --since-time %q: want an RFC 3339 time such as 2026-11-29T08:00:00Z", sinceTime)
				}
				start = &t
			}
			if previous && follow {
				return fmt.Errorf("logs: --previous cannot be followed (-f): that attempt has ended")
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			var sources []logSource
			if selector != "" {
				ctx, cancel := g.reqCtx(cmd.Context())
				sources, err = g.selectLogSources(ctx, c, ns, selector, container)
				cancel()
				if err != nil {
					return err
				}
				if len(sources) == 0 {
					fmt.Fprintln(g.streams.Err, "No resources found")
					return nil
				}
			} else {
				pod, err := podName(args[0])
				if err != nil {
					return err
				}
				sources = []logSource{{pod, container}}
				if prefix && container == "" {
					// The prefix names the container: the pod's only one
					// (with several, the server asks to choose).
					ctx, cancel := g.reqCtx(cmd.Context())
					obj, err := c.Get(ctx, "Pod", orDefault("", ns, podKind()), pod)
					cancel()
					if err != nil {
						return err
					}
					if cs := obj.(*api.Pod).Spec.Containers; len(cs) == 1 {
						sources[0].container = cs[0].Name
					}
				}
			}
			out := &lineWriter{w: g.streams.Out}
			grp, ctx := errgroup.WithContext(cmd.Context())
			if !follow {
				grp.SetLimit(1) // one source after the other, in order
			}
			for _, src := range sources {
				req := api.LogsRequest{Namespace: ns, Pod: src.pod, Container: src.container, Follow: follow, SinceTime: start, Previous: previous}
				if tail >= 0 {
					req.Tail = &tail
				}
				pre := ""
				if prefix {
					pre = "[pod/" + src.pod + "/" + src.container + "] "
				}
				grp.Go(func() error {
					return c.LogLines(ctx, req, func(l client.LogLine) error {
						head := pre
						if timestamps && !l.Time.IsZero() {
							head += l.Time.UTC().Format(time.RFC3339Nano) + " "
						}
						out.line(head, l.Data)
						return nil
					})
				})
			}
			if follow && selector == "" {
				// Following a container that has not started yet: say so,
				// then print its output when it comes.
				if why := g.notStarted(cmd.Context(), c, ns, sources[0]); why != "" {
					fmt.Fprintf(g.streams.Err, "%s; waiting for its output\n", why)
				}
			}
			if err := grp.Wait(); err != nil {
				return err
			}
			if !follow && !previous && start == nil && selector == "" && out.n == 0 {
				// Nothing printed: a container that has not started says
				// so instead of printing nothing, as kubectl's does.
				if why := g.notStarted(cmd.Context(), c, ns, sources[0]); why != "" {
					return api.NewBadRequest("%s", why)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&container, "container", "c", "", "container name (required when the pod has several)")
	f.StringVarP(&selector, "selector", "l", "", "print the output of every pod this label selector picks")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	f.BoolVar(&timestamps, "timestamps", false, "begin each line with the RFC 3339 time it was written")
	f.BoolVar(&prefix, "prefix", false, "begin each line with its source, [pod/NAME/CONTAINER]")
	f.IntVar(&tail, "tail", -1, "print only the last N lines (-1: all)")
	f.DurationVar(&since, "since", 0, "only lines newer than this, e.g. 5s, 2m, 3h")
	f.StringVar(&sinceTime, "since-time", "", "only lines written at or after this RFC 3339 time")
	f.BoolVarP(&previous, "previous", "p", false, "print the output of the container's previous attempt (before its last restart)")
	return cmd
}

// selectLogSources lists the pods selector picks and names the container
// of each: the one given, or (as kubectl) the first, saying so on stderr
// when the pod has several.
func (g *globals) selectLogSources(ctx context.Context, c *client.Client, ns, selector, container string) ([]logSource, error) {
	objs, _, err := c.List(ctx, api.ListRequest{Kind: "Pod", Namespace: orDefault("", ns, podKind()), LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []logSource
	for _, o := range objs {
		p := o.(*api.Pod)
		name := container
		if name == "" && len(p.Spec.Containers) > 0 {
			name = p.Spec.Containers[0].Name
			if len(p.Spec.Containers) > 1 {
				names := make([]string, len(p.Spec.Containers))
				for i, c := range p.Spec.Containers {
					names[i] = c.Name
				}
				fmt.Fprintf(g.streams.Err, "Defaulted container %q in pod/%s out of: %s\n", name, p.Name, strings.Join(names, ", "))
			}
		}
		out = append(out, logSource{p.Name, name})
	}
	return out, nil
}

func podKind() *api.Kind {
	k, _ := api.LookupKind("Pod")
	return k
}

// notStarted says why src's container has not started yet (it never ran:
// no state, or waiting with no earlier run), or "" when it has or the pod
// cannot be read.
func (g *globals) notStarted(ctx context.Context, c *client.Client, ns string, src logSource) string {
	ctx, cancel := g.reqCtx(ctx)
	defer cancel()
	obj, err := c.Get(ctx, "Pod", orDefault("", ns, podKind()), src.pod)
	if err != nil {
		return ""
	}
	p := obj.(*api.Pod)
	name := src.container
	if name == "" {
		if len(p.Spec.Containers) != 1 {
			return ""
		}
		name = p.Spec.Containers[0].Name
	}
	if p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
		return ""
	}
	reason := runtimes.ReasonContainerCreating
	if p.Spec.NodeName == "" {
		reason = "the pod is not scheduled yet"
	}
	for _, cs := range append(append([]api.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Name != name {
			continue
		}
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastState.Terminated != nil || cs.RestartCount > 0 {
			return ""
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			reason = w.Reason
		}
	}
	return fmt.Sprintf("container %q in pod %q is waiting to start: %s", name, p.Name, reason)
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
	n  int // lines written
}

func (lw *lineWriter) line(head string, b []byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.n++
	io.WriteString(lw.w, head)
	writeLine(lw.w, b)
}

// podName reads a pod argument: NAME, or TYPE/NAME of the Pod kind
// (pod/web, pods/web, po/web), as kubectl takes it.
func podName(arg string) (string, error) {
	typ, name, ok := strings.Cut(arg, "/")
	if !ok {
		return arg, nil
	}
	k, err := lookupKind(typ)
	if err != nil {
		return "", err
	}
	if k.Name != "Pod" || name == "" {
		return "", fmt.Errorf("%q: want a pod, as POD or pod/POD", arg)
	}
	return name, nil
}

func writeLine(out io.Writer, b []byte) {
	out.Write(b)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		out.Write([]byte{'\n'})
	}
}

// nodeOrAny is the node segment of a pod's log and event subjects: its
// node, or any node while it is unbound.
func nodeOrAny(node string) string {
	if node == "" {
		return "*"
	}
	return node
}
