// Command kyb is kybernetes' one binary: `kyb up` (all in one), `kyb server`,
// `kyb agent`, and the client verbs (apply, get, describe, delete, logs, ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kybernetes/kybernetes/cmd/kyb/internal/cli"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
)

func main() {
	// When the containerd shim starts kyb as a container's log driver.
	containerd.LogDriverMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	var exit cli.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.Code) // the command has answered already
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
