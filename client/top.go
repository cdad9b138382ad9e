package client

import (
	"context"

	"github.com/kybernetes/kybernetes/api"
)

// Top asks kyb.api.v1.top for the usage of nodes or pods (req.Kind "nodes"
// or "pods"), with the last hour's series when req.Series is set.
func (c *Client) Top(ctx context.Context, req api.TopRequest) (*api.TopReply, error) {
	var reply api.TopReply
	if err := c.call(ctx, api.SubjectTop, req, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}
