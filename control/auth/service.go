package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/microreply"
)

// Authorizer decides whether the sender of a request with headers h may do
// verb on the cluster-scoped resource name ("" for any). It returns a 401
// or 403 *api.Status when not. The control plane passes the apiserver's
// RBAC.
type Authorizer func(h nats.Header, verb, resource, name string) error

// Config configures the auth service.
type Config struct {
	Authority *Authority
	Accounts  *Accounts
	// Store keeps tokens and issued keys; nil until JetStream is ready
	// (then Ready gives it): until then only server joins are answered.
	Store *store.AuthStore
	// TLS says whether the server listens with TLS (replies then carry the CA).
	TLS bool
	// Authorize checks token creation, user creation and revocation;
	// default AdminOnly.
	Authorize Authorizer
	// Servers returns the client URLs and route URLs of every control
	// plane server, for joining servers and nodes.
	Servers func() (clientURLs, routes []string)
}

// Service answers the NATS auth callout, kyb.join and the credential verbs
// (tokens.create, users.create, credentials.revoke) as the micro service
// "kyb-auth". Safe for concurrent use.
type Service struct {
	a       *Authority
	acc     *Accounts
	tls     bool
	servers func() ([]string, []string)
	log     *slog.Logger

	mu    sync.Mutex
	st    *store.AuthStore
	authz Authorizer

	sub *nats.Subscription
	svc micro.Service
}

// NewService returns the auth service of cfg; Start it on a connection of
// the control plane's account.
func NewService(cfg Config, log *slog.Logger) *Service {
	if cfg.Authorize == nil {
		cfg.Authorize = cfg.Authority.AdminOnly
	}
	if cfg.Servers == nil {
		cfg.Servers = func() ([]string, []string) { return nil, nil }
	}
	return &Service{
		a: cfg.Authority, acc: cfg.Accounts, st: cfg.Store,
		tls: cfg.TLS, authz: cfg.Authorize, servers: cfg.Servers, log: log,
	}
}

// Ready gives the service its store and authorizer once JetStream answers
// (a first server starts answering server joins before).
func (s *Service) Ready(st *store.AuthStore, authz Authorizer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
	if authz != nil {
		s.authz = authz
	}
}

func (s *Service) authStore() *store.AuthStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Tokens returns the service's join tokens (nil before Ready).
func (s *Service) Tokens() *Tokens {
	st := s.authStore()
	if st == nil {
		return nil
	}
	return NewTokens(s.a, st)
}

// Start answers the auth callout on callout (a connection of the AUTH
// account's callout user) and registers the micro service on nc (a
// connection of the control plane's account).
func (s *Service) Start(nc, callout *nats.Conn) error {
	sub, err := callout.QueueSubscribe(natsserver.AuthCalloutSubject, "kyb-auth", s.handleCallout)
	if err != nil {
		return fmt.Errorf("auth service: subscribe to the auth callout: %w", err)
	}
	s.sub = sub
	svc, err := micro.AddService(nc, micro.Config{Name: "kyb-auth", Version: "0.1.0", Description: "kybernetes join and credentials"})
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("auth service: add micro service: %w", err)
	}
	s.svc = svc
	for _, ep := range []struct {
		name, subject string
		h             func(context.Context, micro.Request) (any, error)
	}{
		{"join", api.SubjectJoin, s.join},
		{"tokens-create", api.SubjectTokenCreate, s.createToken},
		{"users-create", api.SubjectUserCreate, s.createUser},
		{"credentials-revoke", api.SubjectRevoke, s.revoke},
	} {
		h := ep.h
		// Served on micro's own goroutine (replying from another races with
		// its statistics); these verbs are rare and take milliseconds.
		err := svc.AddEndpoint(ep.name, micro.HandlerFunc(func(req micro.Request) {
			s.serve(req, h)
		}), micro.WithEndpointSubject(ep.subject))
		if err != nil {
			s.Stop()
			return fmt.Errorf("auth service: add endpoint %s: %w", ep.subject, err)
		}
	}
	if err := callout.Flush(); err != nil {
		s.Stop()
		return fmt.Errorf("auth service: flush: %w", err)
	}
	if err := nc.Flush(); err != nil {
		s.Stop()
		return fmt.Errorf("auth service: flush: %w", err)
	}
	return nil
}

// Stop stops answering.
func (s *Service) Stop() {
	if s.svc != nil {
		_ = s.svc.Stop()
	}
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
}

func (s *Service) serve(req micro.Request, h func(context.Context, micro.Request) (any, error)) {
	if s.authStore() == nil && req.Subject() != api.SubjectJoin && len(req.Data()) <= microreply.MaxRequest {
		microreply.Error(req, &api.Status{Code: 503, Reason: api.ReasonUnavailable, Message: "the control plane is starting (JetStream has no quorum yet)"})
		return
	}
	microreply.Serve(req, 30*time.Second, h)
}

func decode(req micro.Request, v any, what string) error {
	if err := json.Unmarshal(req.Data(), v); err != nil {
		return api.NewBadRequest("decode %s: %v", what, err)
	}
	return nil
}

// AdminOnly is an Authorizer that allows the control plane and the admin
// user, and no one else (the control plane uses RBAC instead).
func (a *Authority) AdminOnly(h nats.Header, verb, resource, name string) error {
	who, err := a.Identify(h)
	if err != nil {
		return api.NewForbidden("%v", err)
	}
	if who.ControlPlane || (who.Account == AccountUsers && who.Name == AdminUser) {
		return nil
	}
	return api.NewForbidden("user %q cannot %s resource %q", who.Name, verb, resource)
}

func (s *Service) identify(req micro.Request) (Identity, error) {
	who, err := s.a.Identify(nats.Header(req.Headers()))
	if err != nil {
		return who, api.NewForbidden("%v", err)
	}
	return who, nil
}

func (s *Service) authorize(req micro.Request, verb, resource, name string) error {
	s.mu.Lock()
	authz := s.authz
	s.mu.Unlock()
	return authz(nats.Header(req.Headers()), verb, resource, name)
}

func (s *Service) join(ctx context.Context, req micro.Request) (any, error) {
	who, err := s.identify(req)
	if err != nil || who.Account != AccountBootstrap || !strings.HasPrefix(who.Name, BootstrapPrefix) {
		return nil, api.NewForbidden("kyb.join is only for connections holding a join token")
	}
	id := strings.TrimPrefix(who.Name, BootstrapPrefix)
	var kind struct {
		Server bool `json:"server"`
	}
	if err := decode(req, &kind, "JoinRequest"); err != nil {
		return nil, err
	}
	if id == api.ServerTokenID || kind.Server {
		return s.joinServer(req, id)
	}
	st := s.authStore()
	if st == nil {
		return nil, &api.Status{Code: 503, Reason: api.ReasonUnavailable, Message: "the control plane is starting (JetStream has no quorum yet)"}
	}
	// The token may have been deleted or expired since the connection was made.
	if _, err := NewTokens(s.a, st).CheckID(ctx, id, ""); err != nil {
		return nil, api.NewForbidden("%v", err)
	}
	var in api.JoinRequest
	if err := decode(req, &in, "JoinRequest"); err != nil {
		return nil, err
	}
	if err := ValidName(in.Name); err != nil {
		return nil, api.NewBadRequest("name: %v", err)
	}
	if !nkeys.IsValidPublicUserKey(in.PublicKey) {
		return nil, api.NewBadRequest("publicKey: not an NKey user public key")
	}
	// A token admits new nodes; it does not hand over a node that already
	// has credentials (whoever holds a token could otherwise take over a
	// running node's pods). Revoking the old credentials frees the name.
	// Claiming the name is one create, so two joins at once cannot both win.
	tok, err := s.a.IssueNode(in.Name, in.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := st.ClaimKey(ctx, NodePrefix+in.Name, in.PublicKey); api.IsAlreadyExists(err) {
		return nil, api.NewConflict("Node", in.Name, fmt.Sprintf("node %s already joined; to join it anew (after losing its data dir), revoke its credentials first: kyb node revoke %s", in.Name, in.Name))
	} else if err != nil {
		return nil, err
	}
	s.log.Info("node joined", "node", in.Name, "token", id)
	clients, _ := s.servers()
	return api.JoinReply{JWT: tok, CA: string(s.a.CAPEM()), Servers: clients}, nil
}

func (s *Service) createToken(ctx context.Context, req micro.Request) (any, error) {
	if err := s.authorize(req, "create", "tokens", ""); err != nil {
		return nil, err
	}
	var in api.TokenCreateRequest
	if err := decode(req, &in, "TokenCreateRequest"); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil {
			return nil, api.NewBadRequest("ttl: %v", err)
		}
		ttl = d
	}
	tok, exp, err := NewTokens(s.a, s.authStore()).Create(ctx, ttl, in.Description)
	if err != nil {
		return nil, err
	}
	return api.TokenCreateReply{Token: tok, Expires: exp}, nil
}

func (s *Service) createUser(ctx context.Context, req micro.Request) (any, error) {
	var in api.UserCreateRequest
	if err := decode(req, &in, "UserCreateRequest"); err != nil {
		return nil, err
	}
	if err := s.authorize(req, "create", "users", in.Name); err != nil {
		return nil, err
	}
	if err := ValidName(in.Name); err != nil {
		return nil, api.NewBadRequest("name: %v", err)
	}
	if in.Name == AdminUser {
		return nil, api.NewBadRequest("name: %q is the built-in admin; its credentials are written on first start", AdminUser)
	}
	if !nkeys.IsValidPublicUserKey(in.PublicKey) {
		return nil, api.NewBadRequest("publicKey: not an NKey user public key")
	}
	for _, g := range in.Groups {
		if err := ValidName(g); err != nil {
			return nil, api.NewBadRequest("groups: %v", err)
		}
	}
	tok, err := s.a.IssueUser(in.Name, in.PublicKey, in.Groups...)
	if err != nil {
		return nil, err
	}
	if err := s.authStore().RecordKey(ctx, in.Name, in.PublicKey); err != nil {
		return nil, err
	}
	// Every server's client URL, as a node's join gets: the user's kyb
	// then reaches the cluster through whichever server is up.
	clients, _ := s.servers()
	out := api.UserCreateReply{JWT: tok, InboxPrefix: InboxPrefix(in.Name), Servers: clients}
	if s.tls {
		out.CA = string(s.a.CAPEM())
	}
	return out, nil
}

func (s *Service) revoke(ctx context.Context, req micro.Request) (any, error) {
	var in api.RevokeRequest
	if err := decode(req, &in, "RevokeRequest"); err != nil {
		return nil, err
	}
	if err := ValidName(in.Name); err != nil {
		return nil, api.NewBadRequest("name: %v", err)
	}
	var p, acc string
	switch in.Kind {
	case "node":
		p, acc = NodePrefix+in.Name, AccountNodes
	case "user":
		p, acc = in.Name, AccountUsers
	default:
		return nil, api.NewBadRequest("kind: %q: want node or user", in.Kind)
	}
	if err := s.authorize(req, "delete", "credentials", p); err != nil {
		return nil, err
	}
	st := s.authStore()
	keys, err := st.Keys(ctx, p)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	// Recorded in the auth bucket first, which every server of a cluster
	// watches (WatchRevocations), then applied here at once, so the reply
	// means this server has closed the connections.
	if err := st.Revoke(ctx, acc, keys, now); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", p, err)
	}
	if err := s.acc.Revoke(acc, keys, now); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", p, err)
	}
	if err := st.Forget(ctx, p); err != nil {
		return nil, err
	}
	s.log.Info("credentials revoked", "principal", p)
	return api.RevokeReply{Principal: p, RevokedAt: now.UTC()}, nil
}

// WatchRevocations applies, until ctx ends, every revocation recorded in
// the auth bucket by any server of the cluster, so `kyb node revoke` on one
// server closes the node's connection wherever it is connected.
func (s *Service) WatchRevocations(ctx context.Context) error {
	st := s.authStore()
	if st == nil {
		return errors.New("watch revocations: no store yet")
	}
	return st.WatchRevocations(ctx, func(account string, list store.Revocations) {
		if err := s.acc.Apply(account, jwt.RevocationList(list)); err != nil {
			s.log.Warn("apply revocations", "account", account, "err", err)
		}
	})
}
