package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
)

// newClusterCmd is `kyb cluster status`.
func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The control plane's servers (a NATS cluster)"}
	var output string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the servers (up, current, version), the leader and followers' lag of every stream and bucket, and the lease holders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.clusterStatus(cmd.Context(), output, false)
		},
	}
	status.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: tables)")
	cmd.AddCommand(status)
	return cmd
}

// clusterStatus prints the cluster's status: every table, or (serversOnly,
// for `kyb get servers`) the servers alone.
func (g *globals) clusterStatus(ctx context.Context, output string, serversOnly bool) error {
	switch output {
	case "", "json", "yaml", "wide":
	default:
		return fmt.Errorf("output format %q: want json or yaml", output)
	}
	return g.withClient(ctx, func(ctx context.Context, c *client.Client) error {
		st, err := c.ClusterStatus(ctx)
		if err != nil {
			return fmt.Errorf("cluster status: %w", err)
		}
		switch output {
		case "json":
			b, _ := json.MarshalIndent(st, "", "  ")
			_, err = fmt.Fprintln(g.streams.Out, string(b))
			return err
		case "yaml":
			b, err := yaml.Marshal(st)
			if err != nil {
				return err
			}
			_, err = g.streams.Out.Write(b)
			return err
		}
		printClusterStatus(g.streams.Out, st, serversOnly, time.Now())
		return nil
	})
}

func printClusterStatus(out io.Writer, st *api.ClusterStatus, serversOnly bool, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tLEADER\tVERSION\tURL\tAGE")
	for _, s := range st.Servers {
		status := "Down"
		switch {
		case s.Up && s.Current:
			status = "Up"
		case s.Up:
			status = "Up,Lagging"
		}
		leader := ""
		if s.Name == st.MetaLeader {
			leader = "*"
		}
		age := "<unknown>"
		if !s.Started.IsZero() {
			age = shortDuration(now.Sub(s.Started))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, status, leader, dash(s.Version), dash(s.ClientURL), age)
	}
	if serversOnly {
		w.Flush()
		return
	}
	fmt.Fprintln(w, "\nSTREAM\tREPLICAS\tLEADER\tFOLLOWERS (LAG)\tMESSAGES\t")
	for _, s := range st.Streams {
		var fs []string
		for _, p := range s.Peers {
			f := fmt.Sprintf("%s(%d)", p.Name, p.Lag)
			if p.Offline {
				f = p.Name + "(offline)"
			} else if !p.Current {
				f += "!"
			}
			fs = append(fs, f)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t\n", s.Name, s.Replicas, dash(s.Leader), dash(strings.Join(fs, ",")), s.Messages)
	}
	fmt.Fprintln(w, "\nLEASE\tHOLDER\t\t\t\t")
	for _, l := range st.Leases {
		fmt.Fprintf(w, "%s\t%s\t\t\t\t\n", l.Name, dash(l.Holder))
	}
	w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// serverRemoveCmd is `kyb server remove NAME`.
func serverRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a dead server from the cluster (JetStream peer removal), so a new server can replace it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				return c.RemoveServer(ctx, args[0])
			})
			if err != nil {
				return fmt.Errorf("server remove %s: %w", args[0], err)
			}
			fmt.Fprintf(g.streams.Out, "server/%s removed from the cluster (join a new server with --join and the server token)\n", args[0])
			return nil
		},
	}
}

// serverTokenCmd is `kyb server token`: it reads the data dir, as
// `cat /var/lib/rancher/k3s/server/token` does for k3s.
func serverTokenCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print the cluster's server token (from this server's data dir): kyb server --join URL --token TOKEN on a new server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := auth.ReadServerToken(filepath.Join(dataDir, "server", "pki"))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(g.streams.Out, tok)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the server's data dir")
	return cmd
}
