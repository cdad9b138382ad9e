package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

func newExecCmd(g *globals) *cobra.Command {
	var (
		ns, container string
		stdin, tty    bool
	)
	cmd := &cobra.Command{
		Use:   "exec (POD | pod/POD) [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]",
		Short: "Run a command in a container (a new instance of the module for wasm pods), streamed over NATS",
		Long: "Run a command in a running container, as kubectl exec does: the session is streamed over NATS " +
			"between this client and the node's agent, relayed by the apiserver (no port is opened on any node). " +
			"For a wasm pod the command is a fresh instance of the pod's module with COMMAND as its arguments, " +
			"the pod's env and mounts. kyb exits with the command's exit code.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash != 1 {
				return fmt.Errorf("exec: usage: kyb exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]")
			}
			pod, err := podName(args[0])
			if err != nil {
				return err
			}
			req := api.ExecRequest{Namespace: orDefault("", ns, podKind()), Pod: pod, Container: container, Command: args[1:], TTY: tty}
			return g.runSession(cmd.Context(), api.SessionExec, req, stdin, tty)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&container, "container", "c", "", "container (default: the pod's only one)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command")
	f.BoolVarP(&tty, "tty", "t", false, "run the command on a terminal (raw mode here, resized with this window)")
	return cmd
}

func newAttachCmd(g *globals) *cobra.Command {
	var (
		ns, container string
		stdin, tty    bool
	)
	cmd := &cobra.Command{
		Use:   "attach (POD | pod/POD) [-c CONTAINER] [-i] [-t]",
		Short: "Attach to a container's own process: its output from now on, and with -i its stdin",
		Long: "Attach to the running process of a container, as kubectl attach does: its output from now on " +
			"(stdout and stderr as its log has them), and with -i this terminal's input to its stdin (the container " +
			"must have stdin: true). The end of this input detaches and leaves the container running; with " +
			"stdinOnce: true it closes the container's stdin instead. -t puts this terminal in raw mode and " +
			"resizes the container's terminal (tty: true) with it. kyb exits with the container's exit code when " +
			"it exits during the session.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pod, err := podName(args[0])
			if err != nil {
				return err
			}
			req := api.ExecRequest{Namespace: orDefault("", ns, podKind()), Pod: pod, Container: container, Stdin: stdin, TTY: tty}
			return g.runSession(cmd.Context(), api.SessionAttach, req, stdin, tty && stdin)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&container, "container", "c", "", "container (default: the pod's only one)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the container (it must have stdin: true)")
	f.BoolVarP(&tty, "tty", "t", false, "stdin is a terminal: raw mode here, the container's terminal resized with this window (with -i)")
	return cmd
}

// runSession runs one exec or attach session of kind with this process's
// streams: its stdin when stdin, the terminal in raw mode and resized with
// the window when raw. A non-zero exit code is an ExitError.
func (g *globals) runSession(ctx context.Context, kind string, req api.ExecRequest, stdin, raw bool) error {
	c, nc, err := g.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	sio := client.ExecIO{Stdout: g.streams.Out, Stderr: g.streams.Err}
	if stdin {
		sio.Stdin = g.streams.In
	}
	if raw {
		restore, resize, size := terminal(ctx, g.streams.In, g.streams.Out)
		defer restore()
		req.Size, sio.Resize = size, resize
	}
	code, err := c.Exec(ctx, kind, req, sio)
	if err != nil {
		return err
	}
	if code != 0 {
		return ExitError{Code: int(code)}
	}
	return nil
}

// terminal puts in (when it is a terminal) in raw mode and returns how to
// restore it (nil when it is not one), the terminal sizes as out's window
// changes (SIGWINCH) and its size now.
func terminal(ctx context.Context, in io.Reader, out io.Writer) (func(), <-chan api.TermSize, *api.TermSize) {
	inF, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(inF.Fd())) {
		return func() {}, nil, nil
	}
	fd := int(inF.Fd())
	sizeFd := fd
	if o, ok := out.(*os.File); ok && term.IsTerminal(int(o.Fd())) {
		sizeFd = int(o.Fd())
	}
	size := func() *api.TermSize {
		w, h, err := term.GetSize(sizeFd)
		if err != nil || w <= 0 || h <= 0 {
			return nil
		}
		return &api.TermSize{Width: uint16(w), Height: uint16(h)}
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}, nil, size()
	}
	ch := make(chan api.TermSize, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-sig:
				if s := size(); s != nil {
					select {
					case ch <- *s:
					default:
					}
				}
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(stop)
		_ = term.Restore(fd, state)
	}, ch, size()
}
