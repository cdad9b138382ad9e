// Package microreply answers NATS micro requests the way every kybernetes
// service does: a JSON body, or an error whose micro headers carry the
// api.Status code and message and whose body is the Status itself (what
// client and the nats CLI decode). The auth service and the cluster
// service use it; the apiserver has its own dispatcher with the same reply
// shape.
package microreply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// MaxRequest is the largest request body Serve reads (64 KiB): the
// services that use it take small JSON requests only.
const MaxRequest = 64 << 10

// Serve answers req with h's result, refusing a body over MaxRequest
// (413) and giving h a context that ends after timeout.
func Serve(req micro.Request, timeout time.Duration, h func(context.Context, micro.Request) (any, error)) {
	if len(req.Data()) > MaxRequest {
		Error(req, &api.Status{Code: 413, Reason: api.ReasonTooLarge, Message: "request larger than 64 KiB"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := h(ctx, req)
	if err != nil {
		Error(req, err)
		return
	}
	_ = req.RespondJSON(out)
}

// Error answers req with err: its *api.Status, or a 500 for any other error.
func Error(req micro.Request, err error) {
	var st *api.Status
	if !errors.As(err, &st) {
		st = api.NewInternal(err)
	}
	body, _ := json.Marshal(st)
	desc := st.Message
	if desc == "" {
		desc = st.Reason
	}
	_ = req.Error(fmt.Sprint(st.Code), desc, body)
}
