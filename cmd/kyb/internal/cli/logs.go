package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		ns, container string
		follow        bool
		tail          int
	)
	cmd := &cobra.Command{
		Use:   "logs POD",
		Short: "Print a container's (or module's) output, from the logs stream",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if ns == "" {
				ns = api.DefaultNamespace
			}
			ctx, cancel := g.reqCtx(cmd.Context())
			obj, err := c.Get(ctx, "Pod", ns, args[0])
			cancel()
			if err != nil {
				return err
			}
			pod := obj.(*api.Pod)
			if container == "" {
				if len(pod.Spec.Containers) != 1 {
					var names []string
					for _, c := range pod.Spec.Containers {
						names = append(names, c.Name)
					}
					return fmt.Errorf("logs: pod %s has %d containers; choose one with -c: %s", pod.Name, len(names), strings.Join(names, ", "))
				}
				container = pod.Spec.Containers[0].Name
			} else if !hasContainer(pod, container) {
				return fmt.Errorf("logs: container %q is not in pod %s", container, pod.Name)
			}
			return streamLogs(cmd.Context(), nc, api.LogSubject(nodeOrAny(pod.Spec.NodeName), ns, pod.Name, container), tail, follow, g.streams.Out)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&container, "container", "c", "", "container name (required when the pod has several)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	f.IntVar(&tail, "tail", -1, "print only the last N lines (-1: all)")
	return cmd
}

func hasContainer(p *api.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// streamLogs prints the messages of subject from the logs stream: the last
// tail of them (all when tail < 0), then, when follow, every new one until
// ctx ends.
func streamLogs(ctx context.Context, nc *nats.Conn, subject string, tail int, follow bool, out io.Writer) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	stream, err := js.Stream(ctx, api.LogsStream)
	if err != nil {
		return fmt.Errorf("logs: open stream %s: %w", api.LogsStream, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	// Catch up: read everything there is now, keeping the last tail lines.
	var ring [][]byte
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	pending := info.NumPending
	for pending > 0 {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			return fmt.Errorf("logs: read: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("logs: read: %w", err)
		}
		ring = append(ring, msg.Data())
		if tail >= 0 && len(ring) > tail {
			ring = ring[1:]
		}
		pending = md.NumPending
	}
	for _, l := range ring {
		writeLine(out, l)
	}
	if !follow {
		return nil
	}
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
				continue
			}
			return fmt.Errorf("logs: follow: %w", err)
		}
		writeLine(out, msg.Data())
	}
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
