package client

import (
	"context"

	"github.com/kybernetes/kybernetes/api"
)

// ClusterStatus returns the control plane's servers, the leader and
// followers of every stream and bucket, and the lease holders.
func (c *Client) ClusterStatus(ctx context.Context) (*api.ClusterStatus, error) {
	var out api.ClusterStatus
	if err := c.call(ctx, api.SubjectClusterStatus, api.ClusterStatusRequest{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveServer removes a dead server from the JetStream cluster (peer
// removal), so a new server can take its place. A server that is up is a
// 409 Conflict; an unknown one 404.
func (c *Client) RemoveServer(ctx context.Context, name string) error {
	return c.call(ctx, api.SubjectClusterRemove, api.ServerRemoveRequest{Name: name}, nil)
}
