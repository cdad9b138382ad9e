package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// portMap is one LOCAL:REMOTE of port-forward (local 0: any free port).
type portMap struct{ local, remote int32 }

// parsePortMaps reads kubectl's forms: PORT, LOCAL:REMOTE, :REMOTE.
func parsePortMaps(args []string) ([]portMap, error) {
	var out []portMap
	for _, a := range args {
		l, r, ok := strings.Cut(a, ":")
		if !ok {
			l, r = a, a
		}
		rp, err := parsePortNum(r, false)
		if err != nil {
			return nil, fmt.Errorf("port-forward: %q: remote port: %w", a, err)
		}
		lp, err := parsePortNum(l, true)
		if err != nil {
			return nil, fmt.Errorf("port-forward: %q: local port: %w", a, err)
		}
		out = append(out, portMap{local: lp, remote: rp})
	}
	return out, nil
}

func parsePortNum(s string, zeroOK bool) (int32, error) {
	if s == "" && zeroOK {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return int32(n), nil
}

func newPortForwardCmd(g *globals) *cobra.Command {
	var ns, address string
	cmd := &cobra.Command{
		Use:   "port-forward (POD | pod/POD | svc/SERVICE) [LOCAL:]REMOTE [...]",
		Short: "Forward local ports to a pod's ports, each connection streamed over NATS",
		Long: "Listen on local ports and forward each connection to the pod's port: the agent of the pod's node " +
			"dials the pod's IP inside the node (for a wasm pod, its WAGI handler serves the connection), and the " +
			"bytes flow over NATS through the apiserver. svc/NAME picks a running pod of the Service and maps the " +
			"Service port to its target port.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			maps, err := parsePortMaps(args[1:])
			if err != nil {
				return err
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			ns = orDefault("", ns, podKind())
			pod, maps, err := g.forwardTarget(cmd.Context(), c, ns, args[0], maps)
			if err != nil {
				return err
			}
			return forwardPorts(cmd.Context(), c, ns, pod, address, maps, func(l net.Addr, remote int32) {
				fmt.Fprintf(g.streams.Out, "Forwarding from %s -> %d\n", l, remote)
			}, g.streams.Err)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVar(&address, "address", "127.0.0.1", "local address to listen on")
	return cmd
}

// forwardTarget resolves TARGET to a pod; for svc/NAME it picks a running
// pod of the Service and maps each remote Service port to its target port.
func (g *globals) forwardTarget(ctx context.Context, c *client.Client, ns, target string, maps []portMap) (string, []portMap, error) {
	typ, name, ok := strings.Cut(target, "/")
	if !ok || (typ != "svc" && typ != "service" && typ != "services") {
		pod, err := podName(target)
		return pod, maps, err
	}
	rctx, cancel := g.reqCtx(ctx)
	defer cancel()
	obj, err := c.Get(rctx, "Service", ns, name)
	if err != nil {
		return "", nil, err
	}
	svc := obj.(*api.Service)
	if len(svc.Spec.Selector) == 0 {
		return "", nil, fmt.Errorf("port-forward: service %s has no selector, so no pods", name)
	}
	var sel []string
	for k, v := range svc.Spec.Selector {
		sel = append(sel, k+"="+v)
	}
	sort.Strings(sel)
	objs, _, err := c.List(rctx, api.ListRequest{Kind: "Pod", Namespace: ns, LabelSelector: strings.Join(sel, ","), FieldSelector: "status.phase=Running"})
	if err != nil {
		return "", nil, err
	}
	var pod *api.Pod
	for _, o := range objs {
		if p := o.(*api.Pod); p.DeletionTimestamp == nil && (pod == nil || p.Name < pod.Name) {
			pod = p
		}
	}
	if pod == nil {
		return "", nil, fmt.Errorf("port-forward: service %s has no running pod", name)
	}
	out := make([]portMap, len(maps))
	for i, m := range maps {
		out[i] = m
		for _, sp := range svc.Spec.Ports {
			if sp.Port != m.remote {
				continue
			}
			switch tp := sp.TargetPort; {
			case tp.IsString:
				found := false
				for _, ctr := range pod.Spec.Containers {
					for _, cp := range ctr.Ports {
						if cp.Name == tp.StrVal {
							out[i].remote, found = cp.ContainerPort, true
						}
					}
				}
				if !found {
					return "", nil, fmt.Errorf("port-forward: pod %s has no port named %q (service %s port %d)", pod.Name, tp.StrVal, name, sp.Port)
				}
			case tp.IntVal != 0:
				out[i].remote = tp.IntVal
			}
		}
	}
	return pod.Name, out, nil
}

// forwardPorts listens on address for each map and forwards every
// connection as its own session, until ctx ends.
func forwardPorts(ctx context.Context, c *client.Client, ns, pod, address string, maps []portMap, listening func(net.Addr, int32), errOut io.Writer) error {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for _, m := range maps {
		l, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(int(m.local))))
		if err != nil {
			return fmt.Errorf("port-forward: listen: %w", err)
		}
		lns = append(lns, l)
		listening(l.Addr(), m.remote)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(lns))
	for i, l := range lns {
		remote := maps[i].remote
		wg.Go(func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
						errs <- err
					}
					return
				}
				wg.Go(func() {
					defer conn.Close()
					code, err := c.Exec(ctx, api.SessionPortForward, api.ExecRequest{Namespace: ns, Pod: pod, Port: remote},
						client.ExecIO{Stdin: conn, Stdout: conn})
					if err != nil && ctx.Err() == nil {
						fmt.Fprintf(errOut, "error: port-forward %s -> %s:%d: %v\n", conn.RemoteAddr(), pod, remote, err)
					} else if code != 0 {
						fmt.Fprintf(errOut, "error: port-forward %s -> %s:%d: exit %d\n", conn.RemoteAddr(), pod, remote, code)
					}
				})
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	for _, l := range lns {
		l.Close()
	}
	wg.Wait()
	return err
}
