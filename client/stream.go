package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// DefaultStreamIdle is how long a stream may stay silent (no data, no
// heartbeat) before the client takes the server for dead. The server beats
// every 5 seconds by default.
const DefaultStreamIdle = 30 * time.Second

// streamPendingBytes bounds what a stream's subscription buffers: well over
// one server window (8 MiB of data by default, plus headers).
const streamPendingBytes = 128 << 20

// Stream sends body to subject as a request with a streamed reply (see
// api.StreamHeader) and calls onData with each data message, in order.
// When the server ends a stream on its own with a resume point, Stream asks
// next(resume) for the request to send and goes on, so the caller sees one
// stream. It returns nil when the stream is complete, the error (an
// *api.Status) the server ended it with, a 503 Status when no server
// answers or one stays silent for idle (0: DefaultStreamIdle), the error
// of onData or next, or ctx's error when ctx ends.
func Stream(ctx context.Context, nc *nats.Conn, idle time.Duration, subject string, body []byte,
	next func(resume string) ([]byte, error), onData func(*nats.Msg) error) error {
	if idle <= 0 {
		idle = DefaultStreamIdle
	}
	// A resumed request that finds no server (one restarting, or the
	// stream's server stopping) is sent again for up to idle.
	var retryUntil time.Time
	backoff := 100 * time.Millisecond
	for {
		resume, got, err := streamOnce(ctx, nc, idle, subject, body, onData)
		if err != nil && got == 0 && !retryUntil.IsZero() && time.Now().Before(retryUntil) && isUnavailable(err) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if err != nil || resume == "" {
			return err
		}
		if body, err = next(resume); err != nil {
			return err
		}
		retryUntil, backoff = time.Now().Add(idle), 100*time.Millisecond
	}
}

func isUnavailable(err error) bool { return api.ReasonOf(err) == api.ReasonUnavailable }

// streamOnce runs one request of a stream and returns the resume point of
// its end ("" when the stream is complete) and how many data messages it
// passed on.
func streamOnce(ctx context.Context, nc *nats.Conn, idle time.Duration, subject string, body []byte, onData func(*nats.Msg) error) (resume string, got int, err error) {
	if err := ctx.Err(); err != nil {
		return "", got, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return "", got, fmt.Errorf("stream %s: subscribe: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(-1, streamPendingBytes); err != nil {
		return "", got, fmt.Errorf("stream %s: %w", subject, err)
	}
	// Wake NextMsg when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	defer stop()
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Data: body}); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return "", got, &api.Status{Code: 413, Reason: api.ReasonTooLarge,
				Message: fmt.Sprintf("request of %d bytes exceeds the server's max payload %d", len(body), nc.MaxPayload())}
		}
		return "", got, fmt.Errorf("stream %s: %w", subject, err)
	}
	for {
		m, err := sub.NextMsg(idle)
		switch {
		case ctx.Err() != nil:
			return "", got, ctx.Err()
		case errors.Is(err, nats.ErrNoResponders):
			return "", got, api.NewUnavailable("no kyb apiserver answers on %s (is `kyb server` running?)", subject)
		case errors.Is(err, nats.ErrTimeout):
			return "", got, api.NewUnavailable("stream %s: no message or heartbeat for %s; the server is gone", subject, idle)
		case err != nil:
			return "", got, fmt.Errorf("stream %s: %w", subject, err)
		}
		if err := ReplyError(m); err != nil {
			return "", got, err
		}
		switch m.Header.Get(api.StreamHeader) {
		case api.StreamData:
			if err := onData(m); err != nil {
				return "", got, err
			}
			got++
		case api.StreamHeartbeat:
		case api.StreamEnd:
			return m.Header.Get(api.StreamResumeHeader), got, nil
		default:
			return "", got, fmt.Errorf("stream %s: a reply without the %s header: not a streamed reply", subject, api.StreamHeader)
		}
	}
}
