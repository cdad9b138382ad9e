package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
)

// CreateUser asks the control plane for the credentials of a new user
// name and writes, into dir, <name>.creds, ca.crt (when the server uses
// TLS) and a kyb config file "config" naming them, serverURL first and
// then every other server of the cluster (the reply's Servers). It returns
// the config file's path. The user's key pair is made here; the seed never
// leaves this machine.
func CreateUser(ctx context.Context, c *Client, name, serverURL, dir string, groups ...string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	pub, _ := kp.PublicKey()
	var reply api.UserCreateReply
	if err := c.call(ctx, api.SubjectUserCreate, api.UserCreateRequest{Name: name, PublicKey: pub, Groups: groups}, &reply); err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	seed, _ := kp.Seed()
	creds, err := jwt.FormatUserConfig(reply.JWT, seed)
	if err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	cfg := Config{Server: serverURL, Creds: name + ".creds", InboxPrefix: reply.InboxPrefix}
	// Every other server of a cluster, so that the user's kyb survives the
	// loss of the one it was made through.
	for _, u := range reply.Servers {
		if u != "" && u != serverURL && !slices.Contains(cfg.Servers, u) {
			cfg.Servers = append(cfg.Servers, u)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, cfg.Creds), creds, 0o600); err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	if reply.CA != "" {
		cfg.CA = "ca.crt"
		if err := os.WriteFile(filepath.Join(dir, cfg.CA), []byte(reply.CA), 0o644); err != nil {
			return "", fmt.Errorf("create user %s: %w", name, err)
		}
	}
	path := filepath.Join(dir, "config")
	if err := WriteConfig(path, "kyb client config of user "+name+" (made by `kyb user create`)", cfg); err != nil {
		return "", err
	}
	return path, nil
}

// CreateToken makes a join token valid for ttl.
func (c *Client) CreateToken(ctx context.Context, ttl time.Duration, description string) (string, time.Time, error) {
	var reply api.TokenCreateReply
	req := api.TokenCreateRequest{Description: description}
	if ttl > 0 {
		req.TTL = ttl.String()
	}
	if err := c.call(ctx, api.SubjectTokenCreate, req, &reply); err != nil {
		return "", time.Time{}, err
	}
	return reply.Token, reply.Expires, nil
}

// Revoke revokes every credential issued so far to a node or user (kind
// "node" or "user") and closes its connections.
func (c *Client) Revoke(ctx context.Context, kind, name string) error {
	return c.call(ctx, api.SubjectRevoke, api.RevokeRequest{Kind: kind, Name: name}, nil)
}
