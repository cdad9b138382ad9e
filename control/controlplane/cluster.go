package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/control/store"
)

// ClusterName is the NATS cluster name of every kybernetes control plane.
const ClusterName = "kyb"

// peersFileName keeps, in the data dir, the route addresses of the other
// servers this one has known, so a restart without --peers or --join finds
// its cluster again.
const peersFileName = "cluster-peers.json"

// clusterPlan is what a clustered server needs before its NATS server starts.
type clusterPlan struct {
	host     string
	port     int
	self     string // host:port the other servers reach this one's routes at
	joinedTo string // the server joined on this start, if any

	mu    sync.Mutex
	peers []string // host:port of the other servers' routes
}

// knownPeers returns a copy of the peers' route addresses.
func (p *clusterPlan) knownPeers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.peers)
}

// routeAddr parses a route address: host:port, or a nats-route:// (or
// nats://, tls://) URL.
func routeAddr(s string) (string, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", err
		}
		s = u.Host
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return net.JoinHostPort(host, port), nil
}

// advertiseHost is the host others reach a listener on host at: host
// itself, or for a wildcard the first non-loopback address (else loopback).
func advertiseHost(host string) string {
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// planCluster checks the cluster settings of cfg, joins the cluster when
// asked (installing the keys it receives into pkiDir before they are
// loaded), and returns the routes to configure; nil when the server is
// not clustered.
func planCluster(ctx context.Context, cfg *Config, jsDir, pkiDir string, log *slog.Logger) (*clusterPlan, error) {
	if cfg.ClusterListen == "" {
		if len(cfg.Peers) > 0 || cfg.Join != "" {
			return nil, errors.New("cluster: --peers and --join need --cluster-listen (the address this server's routes listen on)")
		}
		return nil, nil
	}
	host, portStr, err := net.SplitHostPort(cfg.ClusterListen)
	if err != nil {
		return nil, fmt.Errorf("cluster listen %q: %w", cfg.ClusterListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("cluster listen %q: the port must be a fixed number (the other servers dial it)", cfg.ClusterListen)
	}
	if standalone, err := hasStandaloneState(jsDir); err != nil {
		return nil, err
	} else if standalone {
		return nil, fmt.Errorf("cluster: %s holds the state of a single server (started without --cluster-listen); NATS would discard it as orphaned in a cluster. Take a backup and restore it into the new cluster, or keep this server single", jsDir)
	}
	p := &clusterPlan{host: host, port: port, self: net.JoinHostPort(advertiseHost(host), portStr)}
	var peers []string
	for i, s := range cfg.Peers {
		a, err := routeAddr(s)
		if err != nil {
			return nil, fmt.Errorf("peers[%d] %q: want HOST:PORT: %v", i, s, err)
		}
		peers = append(peers, a)
	}
	saved, err := loadPeers(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	peers = append(peers, saved...)
	if cfg.Join != "" {
		if _, err := os.Stat(filepath.Join(pkiDir, auth.CACertFile)); err == nil {
			log.Info("this server already belongs to a cluster; --join ignored", "pki", pkiDir)
		} else {
			tok, err := api.ParseJoinToken(cfg.JoinToken)
			if err != nil {
				return nil, fmt.Errorf("join %s: token: %w", cfg.Join, err)
			}
			reply, err := joinServer(ctx, cfg, "nats-route://"+p.self, log)
			if err != nil {
				return nil, err
			}
			if err := auth.InstallPKI(pkiDir, reply.PKI, tok.CAHash); err != nil {
				return nil, err
			}
			for _, r := range reply.Routes {
				if a, err := routeAddr(r); err == nil {
					peers = append(peers, a)
				}
			}
			p.joinedTo = cfg.Join
			log.Info("joined the cluster", "via", cfg.Join, "routes", reply.Routes)
		}
	}
	p.peers = cleanPeers(peers, p.self, cfg.ClusterListen)
	if err := savePeers(cfg.DataDir, p.peers); err != nil {
		return nil, err
	}
	return p, nil
}

// cleanPeers sorts and de-duplicates peers, without this server's own addresses.
func cleanPeers(peers []string, self ...string) []string {
	out := slices.DeleteFunc(slices.Clone(peers), func(s string) bool { return slices.Contains(self, s) })
	slices.Sort(out)
	return slices.Compact(out)
}

// routeURLs are the routes the NATS server solicits. A first server with no
// peer gets a route to itself (which NATS recognizes and drops), because
// JetStream runs clustered only with a route configured: it then waits for
// a second server to form a quorum.
func (p *clusterPlan) routeURLs(user, pass string) []*url.URL {
	peers := p.peers
	if len(peers) == 0 {
		peers = []string{p.self}
	}
	var out []*url.URL
	for _, a := range peers {
		out = append(out, &url.URL{Scheme: "nats-route", User: url.UserPassword(user, pass), Host: a})
	}
	return out
}

// configure sets opts up for the cluster: routes over mutual TLS with the
// cluster CA, and the routes' user and password (no anonymous route).
func (p *clusterPlan) configure(opts *natsserver.Options, a *auth.Authority) {
	user, pass := a.RouteCredentials()
	opts.Cluster = natsserver.ClusterOpts{
		Name: ClusterName, Host: p.host, Port: p.port,
		Username: user, Password: pass,
		TLSConfig: a.RouteTLS(), TLSTimeout: 5,
	}
	if h, _, _ := net.SplitHostPort(p.self); h != p.host {
		opts.Cluster.Advertise = p.self
	}
	opts.Routes = p.routeURLs(user, pass)
}

// hasStandaloneState reports whether jsDir holds streams of a server that
// ran without a cluster (no JetStream meta group on disk).
func hasStandaloneState(jsDir string) (bool, error) {
	root := filepath.Join(jsDir, "jetstream")
	accts, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", root, err)
	}
	streams, meta := false, false
	for _, a := range accts {
		if !a.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, a.Name(), "_js_", "_meta_")); err == nil {
			meta = true
		}
		if ents, err := os.ReadDir(filepath.Join(root, a.Name(), "streams")); err == nil && len(ents) > 0 {
			streams = true
		}
	}
	return streams && !meta, nil
}

func loadPeers(dataDir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, peersFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster peers: %w", err)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, peersFileName), err)
	}
	return out, nil
}

func savePeers(dataDir string, peers []string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("save cluster peers: %w", err)
	}
	b, _ := json.Marshal(peers)
	tmp := filepath.Join(dataDir, peersFileName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save cluster peers: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dataDir, peersFileName))
}

// waitJetStream waits until JetStream answers (a clustered server needs a
// quorum of the meta group: a second server).
func waitJetStream(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	start, said := time.Now(), time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Since(said) > 10*time.Second {
			log.Info("waiting for a JetStream quorum (a clustered server needs a second one)", "waited", time.Since(start).Round(time.Second), "err", err)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for JetStream: %w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clusterSize is how many servers the JetStream meta group has (1 when standalone).
func clusterSize(ns *natsserver.Server) int {
	jsz, err := ns.Jsz(nil)
	if err != nil || jsz.Meta == nil {
		return 1
	}
	return max(jsz.Meta.Size, 1)
}

// desiredReplicas is the replica count of buckets and streams: the
// configured one, else 3 once the cluster has three servers.
func desiredReplicas(cfg Config, ns *natsserver.Server) int {
	if cfg.Replicas > 0 {
		return cfg.Replicas
	}
	if cfg.ClusterListen != "" && clusterSize(ns) >= 3 {
		return 3
	}
	return 1
}

// clusterLoop registers this server every beat, keeps the peers file up
// to date from the registry, and raises every stream to three replicas (or
// the configured count) once the cluster has three servers: the meta
// leader checks every stream each beat (a stream info per stream), so a
// stream another server created or updated with fewer replicas is raised
// again; never down.
func (cp *ControlPlane) clusterLoop(ctx context.Context, cfg Config, js jetstream.JetStream, servers *store.Servers, info store.ServerInfo) {
	t := time.NewTicker(cfg.ServerBeat)
	defer t.Stop()
	var scaling atomic.Bool
	for {
		rctx, cancel := context.WithTimeout(ctx, max(cfg.ServerBeat, 5*time.Second))
		if err := servers.Register(rctx, info); err != nil && ctx.Err() == nil {
			cp.log.Warn("register server", "err", err)
		}
		if cp.plan != nil {
			if list, err := servers.List(rctx); err == nil {
				known := cp.plan.knownPeers()
				peers := slices.Clone(known)
				for _, s := range list {
					if a, err := routeAddr(s.ClusterURL); err == nil && s.Name != cfg.Name {
						peers = append(peers, a)
					}
				}
				if peers = cleanPeers(peers, cp.plan.self, cfg.ClusterListen); !slices.Equal(peers, known) {
					if err := savePeers(cfg.DataDir, peers); err == nil {
						cp.plan.mu.Lock()
						cp.plan.peers = peers
						cp.plan.mu.Unlock()
					}
				}
			}
			// Scaling runs beside the beats (it can take seconds), one at a time.
			target := cfg.Replicas
			if target == 0 && clusterSize(cp.ns) >= 3 {
				target = 3
			}
			// Only the JetStream meta leader scales (three servers updating
			// the same streams at once can leave updates unanswered).
			if target > 1 && cp.ns.JetStreamIsLeader() && scaling.CompareAndSwap(false, true) {
				go func() {
					defer scaling.Store(false)
					sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
					defer scancel()
					changed, err := store.ScaleReplicas(sctx, js, target)
					if err != nil {
						cp.log.Warn("scale buckets and streams up", "replicas", target, "err", err)
						return
					}
					if len(changed) > 0 {
						cp.log.Info("buckets and streams scaled up", "replicas", target, "changed", changed)
					}
				}()
			}

		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serverTTL is how long a server's registration lives unrenewed: three
// beats, and never under 10 s. A live server whose beats a loaded machine
// or a stream's leader change delays must stay listed (a joining node is
// told the servers listed); a dead one listed a few seconds longer costs
// a client one failed dial.
func serverTTL(beat time.Duration) time.Duration { return max(3*beat, 10*time.Second) }

// advertisedClientURL is the client URL other machines reach this server at.
func (cp *ControlPlane) advertisedClientURL() string {
	u := cp.ns.ClientURL()
	host := hostOfURL(u)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		u = strings.Replace(u, "//"+net.JoinHostPort(host, ""), "//"+net.JoinHostPort(advertiseHost(host), ""), 1)
	}
	return u
}

func hostOfURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// serverURLs are every server's client and route URLs, for joins.
func (cp *ControlPlane) serverURLs() (clients, routes []string) {
	clients = []string{cp.advertisedClientURL()}
	if cp.plan != nil {
		routes = append(routes, "nats-route://"+cp.plan.self)
		for _, p := range cp.plan.knownPeers() {
			routes = append(routes, "nats-route://"+p)
		}
	}
	if s := cp.servers.Load(); s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		list, err := s.List(ctx)
		cancel()
		if err != nil {
			cp.log.Warn("list servers for a join reply: only this server is named", "err", err)
		} else {
			for _, si := range list {
				clients = append(clients, si.ClientURL)
				if si.ClusterURL != "" {
					routes = append(routes, si.ClusterURL)
				}
			}
		}
	}
	slices.Sort(clients)
	slices.Sort(routes)
	return slices.Compact(clients), slices.Compact(routes)
}

// joinServer asks cfg.Join for the cluster's keys, trying again for a
// minute while the server cannot be reached (it may be starting too); a
// refusal (a 4xx) is final.
func joinServer(ctx context.Context, cfg *Config, clusterURL string, log *slog.Logger) (*api.ServerJoinReply, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		reply, err := client.JoinServer(actx, cfg.Join, cfg.JoinToken, cfg.Name, clusterURL)
		acancel()
		var st *api.Status
		if err == nil || errors.As(err, &st) && st.Code < 500 || strings.Contains(err.Error(), "Authorization Violation") {
			return reply, err
		}
		log.Info("join: the server does not answer yet; trying again", "server", cfg.Join, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("join %s: %w", cfg.Join, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// retryWhileClustered runs f, and on a clustered server runs it again on
// failure for up to a minute: a cluster that has just formed may answer
// with a stream briefly offline or without a leader.
func retryWhileClustered(ctx context.Context, clustered bool, log *slog.Logger, f func() error) error {
	err := f()
	if !clustered {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for err != nil && transient(err) && time.Now().Before(deadline) {
		log.Info("the cluster is settling; trying again", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
		err = f()
	}
	return err
}

// transient reports whether a JetStream error may go away as a cluster
// settles: a server-side (5xx) API error, a timeout, no responders.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10005: no suitable peers for placement (a server that just
		// joined is not yet known current).
		return apiErr.Code >= 500 || apiErr.ErrorCode == 10005
	}
	var st *api.Status
	if errors.As(err, &st) {
		return st.Code == 503 // the store's "jetstream unavailable"
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// serverInfo is this server's registration.
func (cp *ControlPlane) serverInfo(cfg Config) store.ServerInfo {
	info := store.ServerInfo{Name: cfg.Name, ClientURL: cp.advertisedClientURL(), Version: Version, Started: time.Now().UTC()}
	if cp.plan != nil {
		info.ClusterURL = "nats-route://" + cp.plan.self
	}
	return info
}

// ServerURLs returns the client URLs of every registered server (this one
// included), for clients' configs.
func (cp *ControlPlane) ServerURLs() []string {
	clients, _ := cp.serverURLs()
	return clients
}
