package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/microreply"
)

// Authorizer decides whether the sender of a request with headers h may do
// verb on resource name; it returns a 401/403 *api.Status when not.
type Authorizer func(h nats.Header, verb, resource, name string) error

// Leases are the control plane's leases the status reports.
var Leases = []string{"scheduler", "controller-manager"}

// Config configures the service.
type Config struct {
	// JS reads stream information (the control plane's account).
	JS jetstream.JetStream
	// Sys is a connection of the system account: it pings every server
	// and asks the JetStream meta leader to remove a peer.
	Sys *nats.Conn
	// Servers is the registry of control plane servers.
	Servers *store.Servers
	// LeaseHolder names the holder of a lease (store.Store.LeaseHolder:
	// leases live in the objects bucket).
	LeaseHolder func(ctx context.Context, name string) (holder string, held bool, err error)
	// Authorize checks every request (RBAC on resource "servers").
	Authorize Authorizer
	// PingWait bounds how long a status waits for servers' answers; default 500ms.
	PingWait time.Duration
}

// Service answers the cluster verbs. Safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger
	svc micro.Service
}

// New returns the service of cfg.
func New(cfg Config, log *slog.Logger) *Service {
	if cfg.PingWait == 0 {
		cfg.PingWait = 500 * time.Millisecond
	}
	return &Service{cfg: cfg, log: log}
}

// Start registers the micro service on nc (a connection of the control
// plane's account).
func (s *Service) Start(nc *nats.Conn) error {
	svc, err := micro.AddService(nc, micro.Config{Name: "kyb-cluster", Version: "0.1.0", Description: "kybernetes cluster status and peer removal"})
	if err != nil {
		return fmt.Errorf("cluster service: %w", err)
	}
	s.svc = svc
	for _, ep := range []struct {
		name, subject string
		h             func(context.Context, micro.Request) (any, error)
	}{
		{"status", api.SubjectClusterStatus, s.status},
		{"remove", api.SubjectClusterRemove, s.remove},
	} {
		h := ep.h
		err := svc.AddEndpoint(ep.name, micro.HandlerFunc(func(req micro.Request) { microreply.Serve(req, 10*time.Second, h) }), micro.WithEndpointSubject(ep.subject))
		if err != nil {
			_ = svc.Stop()
			return fmt.Errorf("cluster service: add endpoint %s: %w", ep.subject, err)
		}
	}
	return nc.Flush()
}

// Stop stops answering.
func (s *Service) Stop() {
	if s.svc != nil {
		_ = s.svc.Stop()
	}
}

// pingReply is one server's answer to $SYS.REQ.SERVER.PING.JSZ.
type pingReply struct {
	Server natsserver.ServerInfo `json:"server"`
	Data   *natsserver.JSInfo    `json:"data"`
}

// ping collects every server's JetStream information for PingWait.
func (s *Service) ping(ctx context.Context) ([]pingReply, error) {
	inbox := s.cfg.Sys.NewRespInbox()
	sub, err := s.cfg.Sys.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("ping servers: %w", err)
	}
	defer sub.Unsubscribe()
	if err := s.cfg.Sys.PublishRequest("$SYS.REQ.SERVER.PING.JSZ", inbox, []byte(`{}`)); err != nil {
		return nil, fmt.Errorf("ping servers: %w", err)
	}
	var out []pingReply
	deadline := time.Now().Add(s.cfg.PingWait)
	for {
		wait := time.Until(deadline)
		if wait <= 0 || ctx.Err() != nil {
			return out, nil
		}
		m, err := sub.NextMsg(wait)
		if err != nil {
			return out, nil
		}
		var r pingReply
		if json.Unmarshal(m.Data, &r) == nil && r.Server.Name != "" {
			out = append(out, r)
		}
	}
}

func (s *Service) status(ctx context.Context, req micro.Request) (any, error) {
	if err := s.cfg.Authorize(nats.Header(req.Headers()), "get", "servers", ""); err != nil {
		return nil, err
	}
	st := api.ClusterStatus{Servers: []api.ServerStatus{}, Streams: []api.StreamStatus{}, Leases: []api.LeaseStatus{}}
	byName := map[string]*api.ServerStatus{}
	get := func(name string) *api.ServerStatus {
		if p, ok := byName[name]; ok {
			return p
		}
		p := &api.ServerStatus{Name: name}
		byName[name] = p
		return p
	}
	regs, err := s.cfg.Servers.List(ctx)
	if err != nil {
		return nil, err
	}
	registered := map[string]bool{}
	for _, r := range regs {
		p := get(r.Name)
		p.ClientURL, p.ClusterURL, p.Version, p.Started = r.ClientURL, r.ClusterURL, r.Version, r.Started
		registered[r.Name] = true
	}
	pings, err := s.ping(ctx)
	if err != nil {
		return nil, err
	}
	answered := map[string]bool{}
	for _, r := range pings {
		p := get(r.Server.Name)
		answered[r.Server.Name] = true
		if p.Version == "" {
			p.Version = "nats " + r.Server.Version
		}
		if r.Data == nil || r.Data.Meta == nil {
			continue
		}
		if r.Data.Meta.Leader != "" {
			st.MetaLeader = r.Data.Meta.Leader
		}
		// Only the meta leader lists its followers, current or not.
		for _, peer := range r.Data.Meta.Replicas {
			q := get(peer.Name)
			q.Current = peer.Current && !peer.Offline
		}
	}
	for name, p := range byName {
		// Up: its NATS server answers (a server whose registration has
		// lapsed for a moment is still up; one registered but silent is not).
		p.Up = answered[name]
		if name == st.MetaLeader || (st.MetaLeader == "" && p.Up) {
			p.Current = p.Up
		}
		st.Servers = append(st.Servers, *p)
	}
	slices.SortFunc(st.Servers, func(a, b api.ServerStatus) int { return strings.Compare(a.Name, b.Name) })

	names := s.cfg.JS.StreamNames(ctx)
	for name := range names.Name() {
		str, err := s.cfg.JS.Stream(ctx, name)
		if err != nil {
			continue
		}
		info, err := str.Info(ctx)
		if err != nil {
			continue
		}
		ss := api.StreamStatus{Name: name, Replicas: info.Config.Replicas, Messages: info.State.Msgs}
		if info.Cluster != nil {
			ss.Leader = info.Cluster.Leader
			for _, r := range info.Cluster.Replicas {
				ss.Peers = append(ss.Peers, api.StreamReplica{Name: r.Name, Current: r.Current, Offline: r.Offline, Lag: r.Lag, Active: r.Active})
			}
		}
		st.Streams = append(st.Streams, ss)
	}
	slices.SortFunc(st.Streams, func(a, b api.StreamStatus) int { return strings.Compare(a.Name, b.Name) })

	for _, n := range Leases {
		holder, _, err := s.cfg.LeaseHolder(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("lease %s: %w", n, err)
		}
		st.Leases = append(st.Leases, api.LeaseStatus{Name: n, Holder: holder})
	}
	return st, nil
}

func (s *Service) remove(ctx context.Context, req micro.Request) (any, error) {
	var in api.ServerRemoveRequest
	if err := json.Unmarshal(req.Data(), &in); err != nil {
		return nil, api.NewBadRequest("decode ServerRemoveRequest: %v", err)
	}
	if in.Name == "" || len(in.Name) > 253 || strings.ContainsAny(in.Name, " \t\r\n*>.") {
		return nil, api.NewBadRequest("name: %q is not a server name", truncate(in.Name))
	}
	if err := s.cfg.Authorize(nats.Header(req.Headers()), "delete", "servers", in.Name); err != nil {
		return nil, err
	}
	pings, err := s.ping(ctx)
	if err != nil {
		return nil, err
	}
	known := false
	for _, r := range pings {
		if r.Server.Name == in.Name {
			return nil, api.NewConflict("servers", in.Name, fmt.Sprintf("server %s is up: stop it first (peer removal is for a dead server)", in.Name))
		}
		if r.Data != nil && r.Data.Meta != nil {
			for _, p := range r.Data.Meta.Replicas {
				known = known || p.Name == in.Name
			}
		}
	}
	if !known {
		return nil, api.NewNotFound("servers", in.Name)
	}
	b, _ := json.Marshal(natsserver.JSApiMetaServerRemoveRequest{Server: in.Name})
	m, err := s.cfg.Sys.RequestWithContext(ctx, natsserver.JSApiRemoveServer, b)
	if err != nil {
		return nil, &api.Status{Code: 503, Reason: api.ReasonUnavailable, Message: fmt.Sprintf("remove server %s: %v", in.Name, err)}
	}
	var resp natsserver.JSApiMetaServerRemoveResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("remove server %s: decode reply: %w", in.Name, err)
	}
	if resp.Error != nil {
		return nil, &api.Status{Code: 409, Reason: api.ReasonConflict, Message: fmt.Sprintf("remove server %s: %s", in.Name, resp.Error.Description)}
	}
	if err := s.cfg.Servers.Forget(ctx, in.Name); err != nil {
		return nil, err
	}
	s.log.Info("server removed from the cluster", "server", in.Name)
	return api.ServerRemoveReply{Name: in.Name}, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
