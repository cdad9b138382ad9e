package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/control/authn"
	"github.com/kybernetes/kybernetes/control/cluster"
	"github.com/kybernetes/kybernetes/control/controllers/cronjob"
	"github.com/kybernetes/kybernetes/control/controllers/daemonset"
	"github.com/kybernetes/kybernetes/control/controllers/deployment"
	"github.com/kybernetes/kybernetes/control/controllers/endpointslice"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/garbagecollector"
	"github.com/kybernetes/kybernetes/control/controllers/job"
	"github.com/kybernetes/kybernetes/control/controllers/namespace"
	"github.com/kybernetes/kybernetes/control/controllers/nodelifecycle"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/controllers/statefulset"
	"github.com/kybernetes/kybernetes/control/controllers/volume"
	"github.com/kybernetes/kybernetes/control/dashboard"
	"github.com/kybernetes/kybernetes/control/scheduler"
	"github.com/kybernetes/kybernetes/control/store"
)

// Config configures a control plane.
type Config struct {
	// DataDir holds JetStream's storage. Required.
	DataDir string
	// Listen is the HOST:PORT clients and agents connect to; default
	// 127.0.0.1:4222. Port 0 picks a free port.
	Listen string
	// Sync is the durability setting: "always" fsyncs every acknowledged
	// write before the reply; a duration (e.g. "1s") fsyncs on that
	// interval, so a power failure (not a process crash) can lose that
	// window. Default "always".
	Sync string
	// MaxPayload is the largest message (and so manifest) the server takes;
	// default 8 MiB.
	MaxPayload int32
	// HeartbeatTTL is how long a node stays alive without a heartbeat; default 40s.
	HeartbeatTTL time.Duration
	// LeaseDuration is how long a control plane holds the scheduler's and
	// the controllers' leases without renewing them; another control plane
	// takes over at most this long plus about 1.25 s (JetStream's one-second
	// expiry tick and the standby's retry) after the holder dies. Default
	// DefaultLeaseDuration (rounded up to whole seconds).
	LeaseDuration time.Duration
	// RenewInterval is how often the holder renews its leases (a standby
	// tries to take them every quarter of it, at most every 250 ms); it
	// must be under LeaseDuration. A holder that has not renewed within
	// LeaseDuration minus RenewInterval stops acting; its writes are fenced
	// in any case (store.Fence). Default DefaultRenewInterval (a third of
	// LeaseDuration when that is shorter).
	RenewInterval time.Duration
	// Restore, when set, is a backup file (kyb backup) restored into the
	// store before anything opens it; a store that already holds any of
	// its streams is refused unless RestoreForce (then they are replaced).
	Restore      string
	RestoreForce bool
	// Identity names this control plane in its leases; default the host
	// name and a random suffix, made once and kept in DataDir, so a control
	// plane restarted before its leases expired takes them back at once.
	Identity string
	// Scheduler configures the scheduler.
	Scheduler scheduler.Config
	// APIServer configures the API.
	APIServer apiserver.Config
	// NodeLifecycle configures the node lifecycle controller.
	NodeLifecycle nodelifecycle.Config
	// Namespace configures the namespace controller (its default grace
	// period is the apiserver's when unset).
	Namespace namespace.Config
	// Job configures the Job controller (its events go to the apiserver's
	// event store when it names no Recorder).
	Job job.Config
	// CronJob configures the CronJob controller (its events, like the Job
	// controller's).
	CronJob cronjob.Config
	// ReplicaSet configures the ReplicaSet controller (its default grace
	// period is the apiserver's when unset).
	ReplicaSet replicaset.Config
	// Deployment configures the Deployment controller.
	Deployment deployment.Config
	// DaemonSet configures the DaemonSet controller (its default grace
	// period is the apiserver's when unset).
	DaemonSet daemonset.Config
	// GarbageCollector configures the garbage collector (its default grace
	// period is the apiserver's when unset).
	GarbageCollector garbagecollector.Config
	// EndpointSlice configures the EndpointSlice controller.
	EndpointSlice endpointslice.Config
	// StatefulSet configures the StatefulSet controller (its default grace
	// period is the apiserver's when unset).
	StatefulSet statefulset.Config
	// Volume configures the persistent volume controller (its Deleter is
	// the agents' volumedelete verb when unset).
	Volume volume.Config
	// TLS is "auto" (the default: TLS unless Listen is a loopback address),
	// "on" or "off" ("off" is refused beyond loopback).
	TLS string
	// TLSNames are extra host names and IPs the server certificate names.
	TLSNames []string
	// HTTP is the HOST:PORT the web dashboard listens on; "" serves none.
	// It uses TLS (the cluster CA's server certificate, so the host must
	// be among its names: the listen host or TLSNames) by the same rule as
	// the NATS listener: TLS "auto" means TLS unless HTTP is a loopback
	// address.
	HTTP string
	// Dashboard configures the dashboard (its Connect is set here).
	Dashboard dashboard.Config
	// RotateSecretsKey makes a new key for the encryption of Secrets at
	// rest on start, re-encrypts every Secret with it and retires the old
	// key (<DataDir>/pki/encryption-config.json, see control/store).
	RotateSecretsKey bool

	// Name is this server's name in the NATS cluster and in `kyb cluster
	// status`; default the host name. Unique within a cluster.
	Name string
	// ClusterListen is the HOST:PORT this server's routes listen on (mutual
	// TLS with the cluster CA and the route password); empty for a single
	// server. See docs/ha.md.
	ClusterListen string
	// Peers are the HOST:PORT route addresses of the other servers (static
	// clustering). The addresses learned since are kept in the data dir.
	Peers []string
	// Join is the client URL of a server of an existing cluster; with
	// JoinToken (the cluster's server token) a new server receives the
	// cluster's keys and routes from it, once (k3s' --server --token).
	Join, JoinToken string
	// Replicas of every bucket and stream; 0 picks 1, then 3 as soon as the
	// JetStream cluster has three servers (existing ones are scaled up).
	Replicas int
	// ServerBeat is how often the server renews its registration (which
	// lives three beats) and checks the cluster's size; default 5s.
	ServerBeat time.Duration
}

// Version is the version servers register (`kyb cluster status` shows it);
// the kyb binary sets it.
var Version = "dev"

// ControlPlane is a running control plane.
type ControlPlane struct {
	ns   *natsserver.Server
	auth *auth.Authority
	tls  bool
	// authSvc answers the auth callout, kyb.join and the credential verbs.
	authSvc *auth.Service
	authNC  *nats.Conn
	callout *nats.Conn
	sys     *nats.Conn // a system account user: pings and peer removal
	plan    *clusterPlan
	servers atomic.Pointer[store.Servers]
	cluster *cluster.Service
	acc     *auth.Accounts
	nc      *nats.Conn // the store's (and so the scheduler's and controllers')
	api     *nats.Conn // the API service's requests and replies
	log     *slog.Logger
	dash    *dashboard.Server
	dashURL string
	dashErr chan error
	done    chan struct{} // closed when every component has returned
	err     error         // the first component failure, set before done closes
	stop    context.CancelFunc
}

// ParseSync turns a --sync value into nats-server options.
func ParseSync(v string) (always bool, interval time.Duration, err error) {
	if v == "" || v == "always" {
		return true, 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("sync %q: want \"always\" or a positive duration such as 1s", v)
	}
	return false, d, nil
}

// Start starts the embedded NATS server and every control plane component.
// It returns once the API answers; Wait reports when it stops.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*ControlPlane, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start control plane: data dir is required")
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 8 << 20
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = min(DefaultRenewInterval, cfg.LeaseDuration/3)
	}
	if err := CheckLease(cfg.LeaseDuration, cfg.RenewInterval); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if cfg.Identity == "" {
		id, err := loadIdentity(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("start control plane: %w", err)
		}
		cfg.Identity = id
	}
	if cfg.HeartbeatTTL == 0 {
		cfg.HeartbeatTTL = 40 * time.Second
	}
	if cfg.ServerBeat == 0 {
		cfg.ServerBeat = 5 * time.Second
	}
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("start control plane: replicas %d: want 0 (automatic) to 5", cfg.Replicas)
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil || checkServerName(h) != nil {
			h = "kyb" // a host name NATS cannot take: a single server needs no unique name
		}
		cfg.Name = h
	}
	if err := checkServerName(cfg.Name); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("start control plane: listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("start control plane: listen %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = -1 // nats-server's "random port"
	}
	always, interval, err := ParseSync(cfg.Sync)
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	useTLS, err := tlsMode(cfg.TLS, host)
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	jsDir := filepath.Join(cfg.DataDir, "jetstream")
	if err := os.MkdirAll(jsDir, 0o700); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	pkiDir := filepath.Join(cfg.DataDir, "pki")
	plan, err := planCluster(ctx, &cfg, jsDir, pkiDir, log)
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	names := cfg.TLSNames
	if plan != nil {
		tuneRaft()
		h, _, _ := net.SplitHostPort(plan.self)
		names = append(slices.Clone(names), h, plan.host)
	}
	authority, err := auth.LoadOrCreate(pkiDir, certHosts(host, names))
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	opts := &natsserver.Options{
		ServerName:   cfg.Name,
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     jsDir,
		SyncAlways:   always,
		SyncInterval: interval,
		MaxPayload:   cfg.MaxPayload,
		NoSigs:       true,
		NoLog:        os.Getenv("KYB_NATS_LOG") == "",
		Debug:        os.Getenv("KYB_NATS_LOG") == "debug",
	}
	// Operator mode: every account and credential is signed by the cluster's
	// keys; the control plane's own users exist only in this process.
	accounts, controlUser, calloutUser, err := authority.Configure(opts, exports())
	if err != nil {
		return nil, fmt.Errorf("start control plane: nats accounts: %w", err)
	}
	if useTLS {
		opts.TLSConfig = authority.ServerTLS()
		opts.TLS = true
		opts.TLSTimeout = 5
	}
	if plan != nil {
		plan.configure(opts, authority)
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start control plane: nats server: %w", err)
	}
	if !opts.NoLog {
		ns.ConfigureLogger()
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start control plane: nats server not ready after 30s")
	}
	accounts.Attach(ns)
	connectAs := func(u auth.InternalUser, name string) (*nats.Conn, error) {
		return nats.Connect("", nats.InProcessServer(ns), nats.Name(name), nats.MaxReconnects(-1),
			nats.UserJWT(func() (string, error) { return u.JWT, nil }, u.Key.Sign))
	}
	connect := func(name string) (*nats.Conn, error) { return connectAs(controlUser, name) }
	// Three in-process connections, so that the store's JetStream traffic,
	// the API's requests and the auth callout do not queue behind each other.
	nc, err := connect("kyb-store")
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("start control plane: connect: %w", err)
	}
	apiConn, err := connect("kyb-apiserver")
	if err != nil {
		nc.Close()
		ns.Shutdown()
		return nil, fmt.Errorf("start control plane: connect: %w", err)
	}
	authConn, err := connect("kyb-auth")
	var calloutConn, sysConn *nats.Conn
	if err == nil {
		if calloutConn, err = connectAs(calloutUser, "kyb-auth-callout"); err != nil {
			authConn.Close()
		}
	}
	if err == nil {
		var sysUser auth.InternalUser
		if sysUser, err = authority.SystemUser(); err == nil {
			sysConn, err = connectAs(sysUser, "kyb-system")
		}
		if err != nil {
			authConn.Close()
			calloutConn.Close()
		}
	}
	if err != nil {
		nc.Close()
		apiConn.Close()
		ns.Shutdown()
		return nil, fmt.Errorf("start control plane: connect: %w", err)
	}
	cp := &ControlPlane{ns: ns, nc: nc, api: apiConn, authNC: authConn, callout: calloutConn, sys: sysConn, plan: plan,
		acc: accounts, auth: authority, tls: useTLS, log: log, done: make(chan struct{})}
	closeAll := func() {
		if cp.authSvc != nil {
			cp.authSvc.Stop()
		}
		cp.nc.Close()
		cp.api.Close()
		cp.authNC.Close()
		cp.callout.Close()
		cp.sys.Close()
		ns.Shutdown()
	}
	// The callout and kyb.join answer before JetStream has a quorum, so a
	// first clustered server admits the second one (which makes the quorum).
	cp.authSvc = auth.NewService(auth.Config{Authority: authority, Accounts: accounts, TLS: useTLS, Servers: cp.serverURLs},
		log.With("component", "auth"))
	if err := cp.authSvc.Start(cp.authNC, cp.callout); err != nil {
		closeAll()
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if plan != nil {
		log.Info("clustered server", "name", cfg.Name, "routes", plan.self, "peers", plan.peers,
			"server token", authority.ServerTokenPath())
	}
	if err := cp.startComponents(ctx, cfg); err != nil {
		closeAll()
		return nil, err
	}
	if cfg.HTTP != "" {
		if err := cp.startDashboard(cfg); err != nil {
			_ = cp.Shutdown()
			return nil, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) startComponents(ctx context.Context, cfg Config) error {
	js, err := jetstream.New(cp.nc)
	if err != nil {
		return fmt.Errorf("start control plane: jetstream: %w", err)
	}
	// Secrets are encrypted at rest with the keys kept beside the other
	// pki keys (a 3-server control plane shares them the same way).
	keys, err := store.LoadOrCreateKeyring(filepath.Join(cfg.DataDir, "pki", store.EncryptionConfigFile))
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if err := waitJetStream(ctx, js, cp.log); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if cfg.Restore != "" {
		if err := cp.restore(ctx, cfg.Restore, cfg.RestoreForce); err != nil {
			return fmt.Errorf("start control plane: %w", err)
		}
	}
	// Three replicas once three servers exist; never fewer than a bucket has.
	// Opening the buckets is retried while a cluster settles (a bucket
	// just created by another server may be briefly offline here).
	var (
		replicas  int
		st        *store.Store
		hb        *store.Heartbeats
		authStore *store.AuthStore
		servers   *store.Servers
	)
	info := cp.serverInfo(cfg)
	open := func() error {
		// Each attempt is bounded: a create racing the same create on
		// another server can go unanswered.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		// Three replicas once three servers exist; never fewer than a bucket has.
		// Buckets that exist keep their count here (the cluster loop raises
		// it once three servers are current); new ones get the desired one.
		replicas = store.KeepReplicas(ctx, js, "KV_"+store.DefaultBucket, 1)
		if !store.StreamExists(ctx, js, "KV_"+store.DefaultBucket) {
			replicas = desiredReplicas(cfg, cp.ns)
		}
		var err error
		if st, err = store.Open(ctx, js, store.Config{Logger: cp.log, Replicas: replicas, Keys: keys}); err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		if hb, err = store.OpenHeartbeats(ctx, js, cfg.HeartbeatTTL); err != nil {
			return fmt.Errorf("open heartbeats: %w", err)
		}
		if authStore, err = store.OpenAuth(ctx, js, replicas); err != nil {
			return err
		}
		if servers, err = store.OpenServers(ctx, js, serverTTL(cfg.ServerBeat), replicas); err != nil {
			return err
		}
		// Registered before Start returns, so joins name this server at once.
		return servers.Register(ctx, info)
	}
	if err := retryWhileClustered(ctx, cp.plan != nil, cp.log, open); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if cfg.RotateSecretsKey {
		if _, _, err := st.RotateKey(ctx); err != nil {
			return fmt.Errorf("start control plane: %w", err)
		}
	} else if n, err := st.FinishKeyRotation(ctx); err != nil {
		return fmt.Errorf("start control plane: finish the rotation of the secrets key: %w", err)
	} else if n > 0 {
		cp.log.Info("finished an interrupted rotation of the secrets key", "secrets", n)
	}
	if err := ensureStorageClass(ctx, st); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if cfg.APIServer.Replicas == 0 {
		// Its streams are created or updated to this count at every start:
		// never fewer than the cluster wants.
		cfg.APIServer.Replicas = max(replicas, desiredReplicas(cfg, cp.ns))
	}
	cp.servers.Store(servers)
	// The apiserver knows users' and nodes' accounts by their keys.
	cfg.APIServer.Accounts = authn.Accounts{Users: cp.auth.Account(auth.AccountUsers), Nodes: cp.auth.Account(auth.AccountNodes)}
	api, err := apiserver.New(cp.api, st, hb, cfg.APIServer, cp.log.With("component", "apiserver"))
	if err != nil {
		return fmt.Errorf("start control plane: apiserver: %w", err)
	}
	// The credential verbs are authorized by the apiserver's RBAC.
	cp.authSvc.Ready(authStore, api.AuthorizeHeader)
	cp.cluster = cluster.New(cluster.Config{JS: js, Sys: cp.sys, Servers: servers, LeaseHolder: st.LeaseHolder, Authorize: api.AuthorizeHeader},
		cp.log.With("component", "cluster"))
	if err := cp.cluster.Start(cp.api); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if cfg.Scheduler.Recorder == nil {
		name := cfg.Scheduler.SchedulerName
		if name == "" {
			name = scheduler.DefaultSchedulerName
		}
		cfg.Scheduler.Recorder = api.Recorder(name, cp.log.With("component", "scheduler"))
	}
	// Only the holder of a lease schedules or runs the controllers, so two
	// control planes on one JetStream never act at once (docs/RATIONALE.md,
	// "Leases").
	schedLog := cp.log.With("component", "scheduler")
	schedLease, err := st.Lease("scheduler", cfg.Identity, cfg.LeaseDuration, cfg.RenewInterval, schedLog)
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	// The controllers share one informer per kind (control/controllers/framework).
	ctlLog := cp.log.With("component", "controllers")
	ctlLease, err := st.Lease("controller-manager", cfg.Identity, cfg.LeaseDuration, cfg.RenewInterval, ctlLog)
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if cfg.NodeLifecycle.Recorder == nil {
		cfg.NodeLifecycle.Recorder = api.Recorder(nodelifecycle.Component, ctlLog)
	}
	if cfg.Namespace.DefaultGracePeriod == 0 {
		cfg.Namespace.DefaultGracePeriod = cfg.APIServer.DefaultGracePeriod
	}
	if cfg.Job.Recorder == nil {
		cfg.Job.Recorder = api.Recorder("job-controller", ctlLog)
	}
	if cfg.CronJob.Recorder == nil {
		cfg.CronJob.Recorder = api.Recorder("cronjob-controller", ctlLog)
	}
	if cfg.ReplicaSet.DefaultGracePeriod == 0 {
		cfg.ReplicaSet.DefaultGracePeriod = cfg.APIServer.DefaultGracePeriod
	}
	if cfg.ReplicaSet.Recorder == nil {
		cfg.ReplicaSet.Recorder = api.Recorder("replicaset-controller", ctlLog)
	}
	if cfg.Deployment.Recorder == nil {
		cfg.Deployment.Recorder = api.Recorder("deployment-controller", ctlLog)
	}
	if cfg.DaemonSet.DefaultGracePeriod == 0 {
		cfg.DaemonSet.DefaultGracePeriod = cfg.APIServer.DefaultGracePeriod
	}
	if cfg.DaemonSet.Recorder == nil {
		cfg.DaemonSet.Recorder = api.Recorder("daemonset-controller", ctlLog)
	}
	if cfg.StatefulSet.DefaultGracePeriod == 0 {
		cfg.StatefulSet.DefaultGracePeriod = cfg.APIServer.DefaultGracePeriod
	}
	if cfg.StatefulSet.Recorder == nil {
		cfg.StatefulSet.Recorder = api.Recorder("statefulset-controller", ctlLog)
	}
	if cfg.Volume.Deleter == nil {
		cfg.Volume.Deleter = agentVolumeDeleter{nc: cp.nc}
	}
	if cfg.Volume.Recorder == nil {
		cfg.Volume.Recorder = api.Recorder("persistentvolume-controller", ctlLog)
	}
	if cfg.GarbageCollector.DefaultGracePeriod == 0 {
		cfg.GarbageCollector.DefaultGracePeriod = cfg.APIServer.DefaultGracePeriod
	}
	// A manager (like a scheduler) runs once: one that lost its lease is
	// rebuilt and campaigns again, as Kubernetes restarts a controller
	// manager that lost leadership.
	// Every write of the scheduler and the controllers is fenced by its
	// lease: a deposed holder's write fails, even one already in flight
	// (store.Fence). Reads and watches share the unfenced store's caches.
	schedStore, ctlStore := st.WithFence(schedLease.Fence()), st.WithFence(ctlLease.Fence())
	newControllers := func() *framework.Manager {
		st := ctlStore
		controllers := framework.NewManager(st, ctlLog)
		controllers.SetElector(ctlLease)
		controllers.Add("nodelifecycle", nodelifecycle.New(controllers, st, hb, cfg.NodeLifecycle, ctlLog))
		controllers.Add("namespace", namespace.New(controllers, st, cfg.Namespace, ctlLog))
		controllers.Add("job", job.New(controllers, st, cfg.Job, ctlLog))
		controllers.Add("cronjob", cronjob.New(controllers, st, cfg.CronJob, ctlLog))
		controllers.Add("replicaset", replicaset.New(controllers, st, cfg.ReplicaSet, ctlLog))
		controllers.Add("deployment", deployment.New(controllers, st, cfg.Deployment, ctlLog))
		controllers.Add("daemonset", daemonset.New(controllers, st, cfg.DaemonSet, ctlLog))
		controllers.Add("statefulset", statefulset.New(controllers, st, cfg.StatefulSet, ctlLog))
		controllers.Add("persistentvolume", volume.New(controllers, st, cfg.Volume, ctlLog))
		controllers.Add("garbagecollector", garbagecollector.New(controllers, st, cfg.GarbageCollector, ctlLog))
		controllers.Add("endpointslice", endpointslice.New(controllers, st, cfg.EndpointSlice, ctlLog))
		return controllers
	}

	runCtx, cancel := context.WithCancel(context.Background())
	cp.stop = cancel
	// The API answers (and the logs stream and module store exist) before
	// Start returns, so an agent started next finds them.
	// Retried while a new cluster settles (creating its streams can time
	// out while the third server joins and every stream is being scaled up).
	if err := retryWhileClustered(ctx, cp.plan != nil, cp.log, func() error { return api.Start(runCtx) }); err != nil {
		cancel()
		return fmt.Errorf("start control plane: %w", err)
	}
	// One component failing stops the others (the group's context ends);
	// a clean stop is every component returning nil when runCtx ends.
	g, gctx := errgroup.WithContext(runCtx)
	run := func(name string, f func(context.Context) error) {
		g.Go(func() error {
			if err := f(gctx); err != nil && !errors.Is(err, context.Canceled) {
				cp.log.Error("component stopped", "component", name, "err", err)
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	run("apiserver", func(ctx context.Context) error { <-ctx.Done(); return api.Stop() })
	run("revocations", func(ctx context.Context) error { return cp.authSvc.WatchRevocations(ctx) })
	run("servers", func(ctx context.Context) error { cp.clusterLoop(ctx, cfg, js, servers, info); return nil })
	run("scheduler", func(ctx context.Context) error {
		return whileLeader(ctx, schedLog, func(ctx context.Context) error {
			return scheduler.New(cfg.Scheduler, schedStore, schedLog).RunWithLease(ctx, schedLease)
		})
	})
	run("controllers", func(ctx context.Context) error {
		return whileLeader(ctx, ctlLog, func(ctx context.Context) error { return newControllers().Run(ctx) })
	})
	go func() {
		cp.err = g.Wait()
		close(cp.done)
	}()
	return nil
}

// ClientURL is the NATS URL clients and agents on this machine use
// (tls:// when the server uses TLS; a wildcard listen address becomes
// 127.0.0.1).
func (cp *ControlPlane) ClientURL() string {
	u := cp.ns.ClientURL()
	for _, any := range []string{"0.0.0.0", "[::]"} {
		u = strings.Replace(u, "//"+any+":", "//127.0.0.1:", 1)
	}
	return u
}

// Conn returns an in-process connection of the control plane's own account
// (no user identity, so no RBAC: it is the cluster itself), for components
// composed with the control plane and for benchmarks. Do not close it.
func (cp *ControlPlane) Conn() *nats.Conn { return cp.authNC }

// Authority returns the cluster's CA, server certificate and credential issuer.
func (cp *ControlPlane) Authority() *auth.Authority { return cp.auth }

// Tokens returns the cluster's join tokens.
func (cp *ControlPlane) Tokens() *auth.Tokens { return cp.authSvc.Tokens() }

// TLS reports whether the server listens with TLS.
func (cp *ControlPlane) TLS() bool { return cp.tls }

// Server returns the embedded NATS server, for in-process connections.
func (cp *ControlPlane) Server() *natsserver.Server { return cp.ns }

// startDashboard listens on cfg.HTTP and serves the web dashboard, whose
// sessions connect in-process with their users' own credentials.
func (cp *ControlPlane) startDashboard(cfg Config) error {
	host, _, err := net.SplitHostPort(cfg.HTTP)
	if err != nil {
		return fmt.Errorf("start control plane: http %q: %w", cfg.HTTP, err)
	}
	useTLS, err := tlsMode(cfg.TLS, host)
	if err != nil {
		return fmt.Errorf("start control plane: http: %w", err)
	}
	dcfg := cfg.Dashboard
	// Sessions connect as any client does (an in-process pipe loses the
	// server's authorization error when it refuses a credential).
	var caOpt nats.Option
	if cp.tls {
		caOpt = nats.Secure(cp.auth.ClientTLS())
	}
	dcfg.Connect = func(opts ...nats.Option) (*nats.Conn, error) {
		if caOpt != nil {
			opts = append(opts, caOpt)
		}
		return nats.Connect(cp.ClientURL(), opts...)
	}
	if useTLS {
		dcfg.TLS = cp.auth.ServerTLS()
	}
	dash, err := dashboard.New(dcfg, cp.log.With("component", "dashboard"))
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("start control plane: dashboard: %w", err)
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	addr := ln.Addr().String()
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", p)
		}
	}
	cp.dash, cp.dashURL, cp.dashErr = dash, scheme+"://"+addr+"/", make(chan error, 1)
	go func() { cp.dashErr <- dash.Serve(context.Background(), ln) }()
	return nil
}

// DashboardURL is the web dashboard's URL ("" when Config.HTTP is empty);
// a wildcard listen address becomes 127.0.0.1.
func (cp *ControlPlane) DashboardURL() string { return cp.dashURL }

// Shutdown stops every component and the NATS server, waits, and returns
// the error of a component that failed, if one did.
func (cp *ControlPlane) Shutdown() error {
	if cp.dash != nil {
		_ = cp.dash.Close()
		if err := <-cp.dashErr; err != nil {
			cp.log.Warn("dashboard stopped", "err", err)
		}
		cp.dash = nil
	}
	if cp.stop != nil {
		cp.stop()
	}
	<-cp.done
	if cp.authSvc != nil {
		cp.authSvc.Stop()
	}
	if cp.cluster != nil {
		cp.cluster.Stop()
	}
	cp.sys.Drain()
	cp.api.Drain()
	cp.nc.Drain()
	cp.authNC.Drain()
	cp.callout.Drain()
	cp.ns.Shutdown()
	cp.ns.WaitForShutdown()
	return cp.err
}

// Done is closed when the components have stopped: a component failed
// (Err says which) or Shutdown was called.
func (cp *ControlPlane) Done() <-chan struct{} { return cp.done }

// Err returns why the components stopped, once Done is closed; nil for Shutdown.
func (cp *ControlPlane) Err() error {
	<-cp.done
	return cp.err
}

// exports are the API subjects users may call.
func exports() []auth.Export {
	out := make([]auth.Export, len(api.APIVerbs))
	for i, v := range api.APIVerbs {
		out[i] = auth.Export{Subject: v.Subject, Stream: v.Stream}
	}
	return out
}

// tlsMode decides whether the server listens with TLS: anything beyond
// loopback always does.
func tlsMode(mode, host string) (bool, error) {
	loopback := isLoopback(host)
	switch mode {
	case "", "auto":
		return !loopback, nil
	case "on":
		return true, nil
	case "off":
		if !loopback {
			return false, fmt.Errorf("tls off: refused for %q, which is not a loopback address (only loopback may be plain TCP)", host)
		}
		return false, nil
	}
	return false, fmt.Errorf("tls %q: want auto, on or off", mode)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// certHosts are the names the server certificate carries: the listen host,
// or every local address and the host name when it listens on all of them,
// plus loopback and extra.
func certHosts(host string, extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			hosts = append(hosts, h)
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
					hosts = append(hosts, n.IP.String())
				}
			}
		}
	} else {
		hosts = append(hosts, host)
	}
	hosts = append(hosts, extra...)
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// Lease defaults: a dead holder is replaced within about 4.25 s (issue 10's
// target is 5 s): the lease expires 3 s after its last renewal, JetStream
// removes it on its next one-second tick at the latest, and a standby
// retries every 250 ms. A live holder renews every second and stops acting
// 2 s after the start of its last successful renewal (so a pause of more
// than a second deposes it). docs/RATIONALE.md, "Leases".
const (
	DefaultLeaseDuration = 3 * time.Second
	DefaultRenewInterval = time.Second
)

// CheckLease reports whether a lease duration and renew interval can be
// used: the duration at least one second, the interval positive and under
// it.
func CheckLease(duration, renew time.Duration) error {
	if duration < time.Second {
		return fmt.Errorf("lease duration %v: must be at least 1s", duration)
	}
	if renew <= 0 || renew >= duration {
		return fmt.Errorf("renew interval %v: must be positive and under the lease duration %v", renew, duration)
	}
	return nil
}

// whileLeader runs term (one component built afresh, running under a lease)
// again each time it ends because its lease was lost, until ctx ends or it
// fails otherwise.
//
// A failure of JetStream that can pass (a 5xx API error, a timeout: a
// cluster electing leaders, a server cut off from its peers) also rebuilds
// the component, after a back-off (1 s doubling to 30 s), instead of
// stopping the whole control plane: a server of a cluster must outlive a
// partition and heal.
func whileLeader(ctx context.Context, log *slog.Logger, term func(context.Context) error) error {
	delay := time.Second
	for {
		started := time.Now()
		err := term(ctx)
		if ctx.Err() != nil {
			return err
		}
		if errors.Is(err, store.ErrLeaseLost) {
			continue
		}
		if err == nil || !transient(err) {
			return err
		}
		if time.Since(started) > time.Minute {
			delay = time.Second
		}
		log.Warn("component failed on a passing JetStream error; restarting it", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// loadIdentity returns the control plane's lease identity kept in dir,
// making it on first start: the host name and a random suffix, so two
// control planes on one host differ.
func loadIdentity(dir string) (string, error) {
	path := filepath.Join(dir, "identity")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "kyb"
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("lease identity: %w", err)
	}
	id := host + "-" + hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("lease identity: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("lease identity: %w", err)
	}
	return id, nil
}

var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)

// checkServerName checks a server name: a host name of at most 63
// characters (letters, digits, '-', '_', '.'), as NATS server names go into
// subjects and the registry.
func checkServerName(name string) error {
	if !serverNameRE.MatchString(name) {
		return fmt.Errorf("name %q: want a host name of at most 63 letters, digits, '-', '_' or '.'", name)
	}
	return nil
}
