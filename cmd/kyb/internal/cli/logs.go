package cli

import (
	"fmt"
	"io"
	"strings"

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
		Use:   "logs (POD | pod/POD)",
		Short: "Print a container's (or module's) output, from the logs stream",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pod, err := podName(args[0])
			if err != nil {
				return err
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			req := api.LogsRequest{Namespace: ns, Pod: pod, Container: container, Follow: follow}
			if tail >= 0 {
				req.Tail = &tail
			}
			return c.Logs(cmd.Context(), req, func(line []byte) error {
				writeLine(g.streams.Out, line)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&container, "container", "c", "", "container name (required when the pod has several)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	f.IntVar(&tail, "tail", -1, "print only the last N lines (-1: all)")
	return cmd
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
