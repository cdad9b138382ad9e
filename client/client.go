package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// DefaultTimeout bounds a request when its context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client calls the kyb API over one NATS connection. It is safe for
// concurrent use; it does not own the connection (Close is the caller's).
type Client struct {
	nc         *nats.Conn
	timeout    time.Duration
	streamIdle time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout sets the timeout of a request whose context has no deadline.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithStreamIdle sets how long a streamed reply may stay silent before the
// client takes the server for dead (default DefaultStreamIdle).
func WithStreamIdle(d time.Duration) Option { return func(c *Client) { c.streamIdle = d } }

// New returns a Client over nc.
func New(nc *nats.Conn, opts ...Option) *Client {
	c := &Client{nc: nc, timeout: DefaultTimeout, streamIdle: DefaultStreamIdle}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Dial connects to the NATS server at url and returns a Client over the
// new connection, and the connection (close it when done).
func Dial(url string, opts ...nats.Option) (*Client, *nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("kyb client")}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	return New(nc), nc, nil
}

// Conn returns the client's connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Request sends data to subject and returns the reply body. An error reply
// of the apiserver comes back as *api.Status; no apiserver answering is a
// 503 Status.
func (c *Client) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	return c.requestMsg(ctx, &nats.Msg{Subject: subject, Data: data})
}

// requestMsg is Request with a whole message (headers included).
func (c *Client) requestMsg(ctx context.Context, m *nats.Msg) ([]byte, error) {
	subject, data := m.Subject, m.Data
	tooLarge := func() error {
		return &api.Status{Code: 413, Reason: api.ReasonTooLarge,
			Message: fmt.Sprintf("request of %d bytes exceeds the server's max payload %d", len(data), c.nc.MaxPayload())}
	}
	if max := c.nc.MaxPayload(); max > 0 && int64(len(data)) > max {
		return nil, tooLarge()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	msg, err := c.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return nil, api.NewUnavailable("no kyb apiserver answers on %s (is `kyb server` running?)", subject)
		case errors.Is(err, nats.ErrMaxPayload):
			return nil, tooLarge()
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return nil, api.NewUnavailable("request on %s: no reply in time: %v", subject, err)
		}
		return nil, fmt.Errorf("request on %s: %w", subject, err)
	}
	if err := ReplyError(msg); err != nil {
		return nil, err
	}
	return msg.Data, nil
}

// ReplyError returns the *api.Status an error reply carries (micro error
// headers, Status JSON body), or nil when msg is not an error.
func ReplyError(msg *nats.Msg) error {
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	st := &api.Status{}
	if err := json.Unmarshal(msg.Data, st); err == nil && st.Code != 0 {
		return st
	}
	n, _ := strconv.Atoi(code)
	return &api.Status{Code: n, Reason: reasonOf(n), Message: msg.Header.Get(micro.ErrorHeader)}
}

func reasonOf(code int) string {
	switch code {
	case 400:
		return api.ReasonBadRequest
	case 401:
		return api.ReasonUnauthorized
	case 403:
		return api.ReasonForbidden
	case 404:
		return api.ReasonNotFound
	case 409:
		return api.ReasonConflict
	case 410:
		return api.ReasonExpired
	case 413:
		return api.ReasonTooLarge
	case 422:
		return api.ReasonInvalid
	case 503:
		return api.ReasonUnavailable
	case 504:
		return api.ReasonTimeout
	}
	return api.ReasonInternal
}

func (c *Client) call(ctx context.Context, subject string, req, reply any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request for %s: %w", subject, err)
	}
	b, err := c.Request(ctx, subject, data)
	if err != nil {
		return err
	}
	if reply == nil {
		return nil
	}
	if err := json.Unmarshal(b, reply); err != nil {
		return fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return nil
}

// Apply sends a manifest (YAML or JSON, one or more documents) and returns
// one result per document. Either every document is valid and applied, or
// the error (an *api.Status with every cause) says why none was. A manifest
// larger than api.MaxRequestBytes (1 MiB) fails with 413 before it is sent,
// as the server would refuse it.
func (c *Client) Apply(ctx context.Context, manifest []byte) (*api.ApplyReply, error) {
	return c.ApplyWith(ctx, manifest, ApplyOptions{})
}

// ApplyOptions change how an apply is made.
type ApplyOptions struct {
	// DryRun asks the server to decide the apply (validation, admission,
	// defaults, created/configured/unchanged) and store nothing.
	DryRun bool
}

// ApplyWith is Apply with options.
func (c *Client) ApplyWith(ctx context.Context, manifest []byte, opts ApplyOptions) (*api.ApplyReply, error) {
	if len(manifest) > api.MaxRequestBytes {
		return nil, &api.Status{Code: 413, Reason: api.ReasonTooLarge,
			Message: fmt.Sprintf("manifest of %d bytes exceeds the limit of %d bytes (1 MiB)", len(manifest), api.MaxRequestBytes)}
	}
	m := &nats.Msg{Subject: api.SubjectApply, Data: manifest}
	if opts.DryRun {
		m.Header = nats.Header{api.DryRunHeader: []string{api.DryRunAll}}
	}
	b, err := c.requestMsg(ctx, m)
	if err != nil {
		return nil, err
	}
	var r api.ApplyReply
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode apply reply: %w", err)
	}
	return &r, nil
}

// CanI asks whether the caller (the identity of the client's connection)
// may do req.Verb on req.Kind; the reply says yes or no, and why. An error
// is returned only when the question could not be asked or answered.
func (c *Client) CanI(ctx context.Context, req api.AuthzRequest) (*api.AuthzReply, error) {
	var r api.AuthzReply
	if err := c.call(ctx, api.SubjectAuthz, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Decode decodes an object of the named kind from its JSON.
func Decode(kind string, raw []byte) (api.Object, error) {
	k, err := api.LookupKind(kind)
	if err != nil {
		return nil, err
	}
	obj := k.New()
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Name, err)
	}
	return obj, nil
}

// Get returns one object; a missing one is a NotFound *api.Status. kind is
// any of a kind's names ("pod", "pods", "po"); namespace "" means "default"
// for namespaced kinds and is ignored for cluster-scoped ones.
func (c *Client) Get(ctx context.Context, kind, namespace, name string) (api.Object, error) {
	return c.GetWith(ctx, api.GetRequest{Kind: kind, Namespace: namespace, Name: name})
}

// GetWith is Get with every field of the request, e.g. ResourceVersion
// api.ResourceVersionAny to read the answering server's cache as it is.
func (c *Client) GetWith(ctx context.Context, req api.GetRequest) (api.Object, error) {
	var raw json.RawMessage
	if err := c.call(ctx, api.SubjectGet, req, &raw); err != nil {
		return nil, err
	}
	return Decode(req.Kind, raw)
}

// ListRaw returns the JSON of every object matching req, fetching every
// page, and the resourceVersion of the first page.
func (c *Client) ListRaw(ctx context.Context, req api.ListRequest) ([]json.RawMessage, string, error) {
	var items []json.RawMessage
	rv := ""
	for {
		data, err := json.Marshal(req)
		if err != nil {
			return nil, "", fmt.Errorf("encode list request: %w", err)
		}
		b, err := c.Request(ctx, api.SubjectList, data)
		if err != nil {
			return nil, "", err
		}
		p, err := parseList(b)
		if err != nil {
			return nil, "", err
		}
		if rv == "" {
			rv = p.rv
		}
		if items == nil {
			items = p.items
		} else {
			items = append(items, p.items...)
		}
		if p.cont == "" || (req.Limit > 0 && len(items) >= req.Limit) {
			return items, rv, nil
		}
		req.Continue = p.cont
	}
}

// List returns every object matching req (all pages) and the
// resourceVersion the list was read at. With req.Limit set it returns at
// most about Limit objects. Items are decoded on every CPU.
func (c *Client) List(ctx context.Context, req api.ListRequest) ([]api.Object, string, error) {
	k, err := api.LookupKind(req.Kind)
	if err != nil {
		return nil, "", api.NewBadRequest("kind: %v", err)
	}
	raws, rv, err := c.ListRaw(ctx, req)
	if err != nil {
		return nil, "", err
	}
	out := make([]api.Object, len(raws))
	workers := min(runtime.GOMAXPROCS(0), 1+len(raws)/256)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raws); i += workers {
				obj := k.New()
				if err := json.Unmarshal(raws[i], obj); err != nil {
					errs[w] = fmt.Errorf("decode %s list item %d: %w", k.Name, i, err)
					return
				}
				out[i] = obj
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, "", err
	}
	return out, rv, nil
}

// Delete deletes one object and returns it: removed, or (a pod bound to a
// node) marked with a deletionTimestamp until its agent has stopped it.
// req.Preconditions (see IfMatches) make it conditional: when the stored
// object's uid or resourceVersion differs, it fails with a 409 Conflict
// (api.IsConflict) naming both, and nothing is deleted.
func (c *Client) Delete(ctx context.Context, req api.DeleteRequest) (api.Object, error) {
	var raw json.RawMessage
	if err := c.call(ctx, api.SubjectDelete, req, &raw); err != nil {
		return nil, err
	}
	return Decode(req.Kind, raw)
}

// IfMatches returns delete preconditions on the uid and resourceVersion
// given; an empty one is not checked, and both empty is nil (no condition).
// Pass the values read with Get: IfMatches(m.UID, m.ResourceVersion).
func IfMatches(uid, resourceVersion string) *api.Preconditions {
	if uid == "" && resourceVersion == "" {
		return nil
	}
	p := &api.Preconditions{}
	if uid != "" {
		p.UID = &uid
	}
	if resourceVersion != "" {
		p.ResourceVersion = &resourceVersion
	}
	return p
}
