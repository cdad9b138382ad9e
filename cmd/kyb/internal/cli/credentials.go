package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/node"
)

// Files of a node's identity under <data-dir>/agent.
const (
	nodeCredsFile = "node.creds"
	nodeCAFile    = "ca.crt"
)

// nodeName is the node name the agent will use: --name, else the host name.
func (f *agentFlags) nodeName() (string, error) {
	if f.name != "" {
		return f.name, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("node name: %w (set --name)", err)
	}
	return node.NameFromHostname(h), nil
}

// connectNode connects the agent with its node credentials, kept under
// its data dir. Without them it joins first, with the token token() gives
// (a bootstrap token from `kyb token create`), and keeps what the join
// returns for later starts. extra are connect options (an in-process
// server, for `kyb up`).
func connectNode(ctx context.Context, f *agentFlags, url string, token func() (string, error), extra ...nats.Option) (*nats.Conn, error) {
	name, err := f.nodeName()
	if err != nil {
		return nil, err
	}
	f.name = name
	dir := filepath.Join(f.dataDir, "agent")
	credsPath, caPath := filepath.Join(dir, nodeCredsFile), filepath.Join(dir, nodeCAFile)
	creds, err := os.ReadFile(credsPath)
	if errors.Is(err, os.ErrNotExist) {
		tok, err := token()
		if err != nil {
			return nil, err
		}
		if tok == "" {
			return nil, fmt.Errorf("agent: no node credentials in %s: join the cluster once with --token (make one with `kyb token create` on the server)", dir)
		}
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		nc, err := client.Join(jctx, url, tok, name, extra...)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		if err := os.WriteFile(caPath, nc.CA, 0o644); err != nil {
			return nil, fmt.Errorf("agent: keep the cluster CA: %w", err)
		}
		if err := os.WriteFile(credsPath, nc.Creds, 0o600); err != nil {
			return nil, fmt.Errorf("agent: keep the node credentials: %w", err)
		}
		if err := node.SaveServers(dir, nc.Servers); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		creds = nc.Creds
	} else if err != nil {
		return nil, fmt.Errorf("agent: read node credentials: %w", err)
	}
	if tok, err := jwt.ParseDecoratedJWT(creds); err == nil {
		if uc, err := jwt.DecodeUserClaims(tok); err == nil && uc.Name != "system:node:"+name {
			return nil, fmt.Errorf("agent: the credentials in %s are %s's, not node %s's (remove them to join anew)", credsPath, uc.Name, name)
		}
	}
	credsOpt, err := client.CredsOption(creds)
	if err != nil {
		return nil, fmt.Errorf("agent: node credentials %s: %w", credsPath, err)
	}
	opts := []nats.Option{credsOpt, nats.Name("kyb-agent " + name), nats.CustomInboxPrefix(api.InboxPrefix(name)),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if ca, err := os.ReadFile(caPath); err == nil {
		o, err := client.TLSOption(ca)
		if err != nil {
			return nil, fmt.Errorf("agent: cluster CA %s: %w", caPath, err)
		}
		opts = append(opts, o)
	}
	// Every server the agent has learned of (from its join and the
	// cluster's advertised URLs), so it reaches the control plane while any
	// server is up; --server first.
	urls := []string{url}
	if len(extra) == 0 {
		saved, err := node.LoadServers(dir)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		for _, u := range saved {
			if !slices.Contains(urls, u) {
				urls = append(urls, u)
			}
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("agent: connect to %s as node %s: %w", strings.Join(urls, ","), name, err)
	}
	if len(extra) == 0 {
		node.TrackServers(nc, dir, nil)
	}
	return nc, nil
}

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage join tokens (agents exchange one for their node credentials)"}
	var ttl time.Duration
	var desc string
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a join token: kyb agent --server URL --token TOKEN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				tok, _, err := c.CreateToken(ctx, ttl, desc)
				if err != nil {
					return fmt.Errorf("token create: %w", err)
				}
				fmt.Fprintln(g.streams.Out, tok)
				return nil
			})
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token may be used")
	create.Flags().StringVar(&desc, "description", "", "what the token is for")
	cmd.AddCommand(create)
	return cmd
}

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users' credentials (their rights come from RBAC bindings)"}
	var groups []string
	var out string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Issue credentials for a new user and write a kyb config for them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				out = args[0]
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				url := c.Conn().ConnectedUrl()
				if g.server != "" {
					url = g.server
				}
				path, err := client.CreateUser(ctx, c, args[0], url, out, groups...)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "user/%s created: KYB_CONFIG=%s kyb get pods\n(no rights until bound: kyb apply a RoleBinding or ClusterRoleBinding naming User %s)\n", args[0], path, args[0])
				return nil
			})
		},
	}
	create.Flags().StringSliceVar(&groups, "group", nil, "groups the user is in (RBAC subjects of kind Group)")
	create.Flags().StringVarP(&out, "output-dir", "o", "", "directory for the user's config, credentials and CA (default ./NAME)")
	cmd.AddCommand(create, revokeCmd(g, "user"))
	return cmd
}

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Manage nodes' credentials"}
	cmd.AddCommand(revokeCmd(g, "node"))
	return cmd
}

func revokeCmd(g *globals, kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke every credential issued to the " + kind + " so far and close its connections",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				return c.Revoke(ctx, kind, args[0])
			})
			if err != nil {
				return fmt.Errorf("%s revoke %s: %w", kind, args[0], err)
			}
			fmt.Fprintf(g.streams.Out, "%s/%s credentials revoked\n", kind, args[0])
			if kind == "node" {
				fmt.Fprintf(g.streams.Out, "(to let it back in: remove <data-dir>/agent/%s on the node and join with a new token)\n", nodeCredsFile)
			}
			return nil
		},
	}
}
