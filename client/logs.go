package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// Logs calls line with each line of a container's output
// (kyb.api.v1.logs), in order: those req selects now, then, with
// req.Follow, new ones until ctx ends or the pod is deleted (then it
// returns nil). Streams the server ends on its own are resumed from the
// next line, unseen by the caller. A missing pod is a NotFound
// *api.Status; a pod with several containers and none named is a
// BadRequest naming them.
func (c *Client) Logs(ctx context.Context, req api.LogsRequest, line func([]byte) error) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode logs request: %w", err)
	}
	resumed := false
	next := func(resume string) ([]byte, error) {
		resumed = true
		var seq uint64
		if _, err := fmt.Sscan(resume, &seq); err != nil {
			return nil, fmt.Errorf("logs: bad resume point %q: %w", resume, err)
		}
		req.SinceSeq, req.Tail = seq, nil
		return json.Marshal(req)
	}
	err = Stream(ctx, c.nc, c.streamIdle, api.SubjectLogs, body, next, func(m *nats.Msg) error { return line(m.Data) })
	if ctx.Err() != nil || (resumed && api.IsNotFound(err)) {
		// A follow resumed after the pod was deleted: nothing more comes.
		return nil
	}
	return err
}
