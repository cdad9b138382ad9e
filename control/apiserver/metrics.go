package apiserver

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// Request latency (kyb_apiserver_request_duration_seconds) is measured once,
// here, for every endpoint: guard wraps each request in a timedReq, and the
// first reply to it (through dispatchOn, micro's Respond or Error) observes
// the time since receipt with the reply's code. Streamed verbs are not
// timed (they last minutes); their error replies before streaming are.

// timedReq is a micro.Request that observes its first reply.
type timedReq struct {
	micro.Request
	verb  string
	start time.Time
	done  atomic.Bool
}

// instrument wraps req of endpoint ep for timing, unless metrics are off or
// ep streams.
func instrument(ep endpoint, stream bool, req micro.Request) micro.Request {
	if !metrics.Enabled.Load() || stream {
		return req
	}
	return &timedReq{Request: req, verb: ep.name, start: time.Now()}
}

func (t *timedReq) observe(code int) {
	if t.done.CompareAndSwap(false, true) {
		metrics.ObserveRequest(t.verb, code, t.start)
	}
}

// Respond implements micro.Request, observing a 200.
func (t *timedReq) Respond(b []byte, opts ...micro.RespondOpt) error {
	t.observe(200)
	return t.Request.Respond(b, opts...)
}

// RespondJSON implements micro.Request, observing a 200.
func (t *timedReq) RespondJSON(v any, opts ...micro.RespondOpt) error {
	t.observe(200)
	return t.Request.RespondJSON(v, opts...)
}

// Error implements micro.Request, observing code.
func (t *timedReq) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	n, err := strconv.Atoi(code)
	if err != nil {
		n = 500
	}
	t.observe(n)
	return t.Request.Error(code, description, data, opts...)
}

// observeReply records the reply of a dispatched request: err nil is 200,
// otherwise its status code.
func observeReply(req micro.Request, err error) {
	t, ok := req.(*timedReq)
	if !ok {
		return
	}
	if err == nil {
		t.observe(200)
		return
	}
	t.observe(int(toStatus(err).Code))
}

// streams reports whether subject is a streamed verb (api.APIVerbs,
// api.NodeVerbs).
func streams(subject string) bool {
	for _, vs := range [][]api.APIVerb{api.APIVerbs, api.NodeVerbs} {
		for _, v := range vs {
			if v.Subject == subject {
				return v.Stream
			}
		}
	}
	return false
}
