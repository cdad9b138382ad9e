package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

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
	return c.LogLines(ctx, req, func(l LogLine) error { return line(l.Data) })
}

// LogLine is one line of a container's output with what its agent
// recorded about it.
type LogLine struct {
	// Data is the line as the container wrote it.
	Data []byte
	// Time is when it was written; zero when the agent did not say.
	Time time.Time
	// Stream is stdout or stderr; "" when the agent did not say.
	Stream string
	// Seq is the line's position in the logs stream (a resume point for
	// LogsRequest.SinceSeq: the next line is Seq+1); 0 when unknown.
	Seq uint64
}

// Agent headers of a log line (node.HeaderLogTime and HeaderLogStream).
const (
	headerLogTime   = "Kyb-Time"
	headerLogStream = "Kyb-Stream"
)

// LogLines is Logs with each line's time and stream.
func (c *Client) LogLines(ctx context.Context, req api.LogsRequest, line func(LogLine) error) error {
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
	err = Stream(ctx, c.nc, c.streamIdle, api.SubjectLogs, body, next, func(m *nats.Msg) error {
		l := LogLine{Data: m.Data, Stream: m.Header.Get(headerLogStream)}
		l.Seq, _ = strconv.ParseUint(m.Header.Get(api.StreamSeqHeader), 10, 64)
		if t := m.Header.Get(headerLogTime); t != "" {
			l.Time, _ = time.Parse(time.RFC3339Nano, t)
		}
		return line(l)
	})
	if ctx.Err() != nil || (resumed && api.IsNotFound(err)) {
		// A follow resumed after the pod was deleted: nothing more comes.
		return nil
	}
	return err
}
