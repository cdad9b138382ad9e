package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kybernetes/kybernetes/internal/version"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authn"
	"github.com/kybernetes/kybernetes/control/authz"
	"github.com/kybernetes/kybernetes/control/events"
	"github.com/kybernetes/kybernetes/control/store"
)

// JetStream assets the apiserver creates on start.
const (
	// LogsStream is the stream of container and module output, subjects kyb.logs.>.
	LogsStream = api.LogsStream
	// LogsSubjects are the subjects of LogsStream.
	LogsSubjects = api.LogsPrefix + ".>"
	// ModulesBucket is the object store of wasm modules pushed into the cluster.
	ModulesBucket = api.ModulesBucket
)

// Version is the micro service version: kyb's, as semver.
var Version = version.Semver()

// Config configures the apiserver. The zero value is usable.
type Config struct {
	// ClusterCIDR is the range node pod CIDRs are cut from; default 10.42.0.0/16.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of one node's pod CIDR; default 24.
	NodeCIDRMaskSize int
	// LogsMaxAge bounds the age of log messages; default 72h.
	LogsMaxAge time.Duration
	// LogsMaxBytes bounds the size of the logs stream; default 1 GiB.
	LogsMaxBytes int64
	// Replicas of the logs stream and module store; default 1.
	Replicas int
	// MaxInFlight bounds the user (kyb.api.v1) requests served at once;
	// default 256.
	MaxInFlight int
	// NodeMaxInFlight bounds the node requests (register, heartbeat,
	// status, pod status, sync) served at once, apart from MaxInFlight, so
	// that a flood of user requests never holds up a heartbeat; default 64.
	NodeMaxInFlight int
	// DefaultGracePeriod is a pod's grace period when neither the delete
	// request nor the pod names one; default 30s.
	DefaultGracePeriod time.Duration
	// Accounts names the NATS accounts of users and nodes (default USERS
	// and NODES; their public keys when accounts are JWTs).
	Accounts authn.Accounts

	// StreamMaxDuration ends a streamed reply (watch, logs, module
	// download) after this long with a resume point, from which the client
	// asks again; default 90s. Keep it below the response threshold of a
	// cross-account service import with streamed responses (NATS' default
	// is 2 minutes), through which users reach the service.
	StreamMaxDuration time.Duration
	// StreamHeartbeat is how often a stream beats when idle, so that a
	// client notices a dead server; default 5s.
	StreamHeartbeat time.Duration
	// StreamMaxBytes ends one stream window after this many data bytes (the
	// client asks again at once), so that a slow client never holds more;
	// default 8 MiB.
	StreamMaxBytes int64
	// ExecPing is how often the hops of an exec or port-forward session
	// ping; a side silent for api.ExecIdlePings of them ends the session.
	// Default DefaultExecPing.
	ExecPing time.Duration
	// MaxStreams bounds the users' streams open at once (503 beyond);
	// default 1024.
	MaxStreams int
	// MaxNodeStreams bounds the nodes' streams (module downloads) open at
	// once, apart from users'; default 256.
	MaxNodeStreams int
	// MaxNodeWatches bounds the nodes' services watches (one per agent,
	// held open) apart from downloads. Default 4096.
	MaxNodeWatches int
	// WatchHistory is how many committed changes the server keeps for
	// watches to resume from; an older resourceVersion is 410 Gone; default
	// 10000.
	WatchHistory int
	// EventsMaxAge bounds the age of an event since it was last recorded;
	// default 24h.
	EventsMaxAge time.Duration
	// EventsPerObject bounds the events kept about one object (the oldest
	// goes first); default 100.
	EventsPerObject int
	// UploadIdleTimeout drops a module upload that received no chunk for
	// this long, leaving nothing stored; default 30s.
	UploadIdleTimeout time.Duration
	// MaxUploads bounds the module uploads open at once; default 16.
	MaxUploads int
	// ServiceCIDR is the range Service cluster IPs come from; default
	// 10.43.0.0/16 (api.DefaultServiceCIDR). Its .1 and .10 are handed out
	// only when asked for (the kubernetes Service, the cluster DNS).
	ServiceCIDR string
	// NodePortRange is the range NodePorts come from, "LOW-HIGH"; default
	// 30000-32767.
	NodePortRange string
	// AllocRepairInterval is how often the allocations (cluster IPs,
	// NodePorts) are checked against the Services; default 3m, as
	// Kubernetes' repair controllers; negative: never (RepairAllocations
	// is then the caller's).
	AllocRepairInterval time.Duration
	// AllocRepairGrace is how old an unused allocation must be before the
	// repair releases it (an apply allocates before it writes); default 1m.
	AllocRepairGrace time.Duration
	// UsagePoints bounds the samples kept per node and per pod for `kyb
	// top` and the dashboard's plots; default 360 (an hour of 10 s samples).
	UsagePoints int
	// UsageRetention is how long a usage sample is kept; default 1h.
	UsageRetention time.Duration
}

func (c *Config) defaults() error {
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = api.DefaultClusterCIDR
	}
	if c.NodeCIDRMaskSize == 0 {
		c.NodeCIDRMaskSize = 24
	}
	if c.LogsMaxAge == 0 {
		c.LogsMaxAge = 72 * time.Hour
	}
	if c.LogsMaxBytes == 0 {
		c.LogsMaxBytes = 1 << 30
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.NodeMaxInFlight == 0 {
		c.NodeMaxInFlight = 64
	}
	if c.DefaultGracePeriod == 0 {
		c.DefaultGracePeriod = 30 * time.Second
	}
	if c.StreamMaxDuration == 0 {
		c.StreamMaxDuration = 90 * time.Second
	}
	if c.StreamHeartbeat == 0 {
		c.StreamHeartbeat = 5 * time.Second
	}
	if c.StreamMaxBytes == 0 {
		c.StreamMaxBytes = 8 << 20
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 1024
	}
	if c.MaxNodeStreams == 0 {
		c.MaxNodeStreams = 256
	}
	if c.MaxNodeWatches == 0 {
		c.MaxNodeWatches = 4096
	}
	if c.WatchHistory == 0 {
		c.WatchHistory = 10000
	}
	if c.UploadIdleTimeout == 0 {
		c.UploadIdleTimeout = 30 * time.Second
	}
	if c.MaxUploads == 0 {
		c.MaxUploads = 16
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = api.DefaultServiceCIDR
	}
	if c.NodePortRange == "" {
		c.NodePortRange = api.DefaultNodePortRange
	}
	if c.AllocRepairInterval == 0 {
		c.AllocRepairInterval = 3 * time.Minute
	}
	if c.AllocRepairGrace == 0 {
		c.AllocRepairGrace = time.Minute
	}
	if c.UsagePoints <= 0 {
		c.UsagePoints = 360
	}
	if c.UsageRetention <= 0 {
		c.UsageRetention = time.Hour
	}
	if _, err := parseServiceRanges(c.ServiceCIDR, c.NodePortRange); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(c.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("cluster CIDR %q: %w", c.ClusterCIDR, err)
	}
	if !p.Addr().Is4() || c.NodeCIDRMaskSize < p.Bits() || c.NodeCIDRMaskSize > 30 {
		return fmt.Errorf("node CIDR mask size /%d does not fit cluster CIDR %s (IPv4 only)", c.NodeCIDRMaskSize, p)
	}
	return nil
}

// Server is the kyb API service. Create it with New, then Start (or Run) it.
// Its methods are safe for concurrent use.
type Server struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	st    *store.Store
	hb    *store.Heartbeats
	cfg   Config
	cidr  netip.Prefix
	log   *slog.Logger
	cache *cache
	// revs shares the store's last revision among consistent reads.
	revs *revBatch
	// authz authorizes every request; fed by the store watch.
	authz *authz.Authorizer
	// podNodes maps pod cache keys to their node; watch goroutine only.
	podNodes map[string]string
	// seen holds each object as the store watch last delivered it (the
	// "before" of the next change); watch goroutine only.
	seen    map[string]api.Object
	hist    *history
	streams chan struct{}
	// nodeStreams bounds the streams of nodes apart from users', so that
	// users' watches cannot keep nodes from their modules.
	nodeStreams chan struct{}
	// nodeWatches bounds the agents' services watches.
	nodeWatches chan struct{}
	uploads     *uploads
	backups     *backups
	// closing is set by Stop under closeMu: after it, no goroutine joins wg.
	closeMu sync.Mutex
	closing bool
	modules jetstream.ObjectStore
	// alloc holds the Services' cluster IPs and NodePorts (services.go).
	alloc  *store.Allocations
	ranges serviceRanges
	events atomic.Pointer[events.Store] // set by Start
	gone   *gonePods                    // pods deleted lately, for their last events
	execs  *execRelay                   // exec sessions relayed (exec.go)
	usage  *usageStore                  // the last hour of node and pod usage (usage.go)
	id     string                       // this server among its peers (usageshare.go)
	shared *nats.Subscription           // usage reports other servers took (usageshare.go)

	sem     chan struct{} // user requests in flight
	nodeSem chan struct{} // node requests in flight
	cidrMu  sync.Mutex
	stripes [64]sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	svc     micro.Service
	wg      sync.WaitGroup
	synced  chan struct{}
	stopped sync.Once
}

// New returns a Server on nc over st (API objects) and hb (node liveness).
// It does nothing on the network until Start.
func New(nc *nats.Conn, st *store.Store, hb *store.Heartbeats, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("apiserver config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("apiserver: jetstream: %w", err)
	}
	ranges, _ := parseServiceRanges(cfg.ServiceCIDR, cfg.NodePortRange) // checked by defaults
	return &Server{
		nc: nc, js: js, st: st, hb: hb, cfg: cfg, log: log, ranges: ranges,
		cidr:        netip.MustParsePrefix(cfg.ClusterCIDR).Masked(),
		cache:       newCache(),
		authz:       authz.New(),
		podNodes:    map[string]string{},
		seen:        map[string]api.Object{},
		hist:        newHistory(cfg.WatchHistory),
		streams:     make(chan struct{}, cfg.MaxStreams),
		execs:       &execRelay{m: map[string]*relaySession{}},
		nodeStreams: make(chan struct{}, cfg.MaxNodeStreams),
		nodeWatches: make(chan struct{}, cfg.MaxNodeWatches),
		uploads:     newUploads(),
		backups:     newBackups(),
		gone:        newGonePods(),
		usage:       newUsageStore(cfg.UsagePoints, cfg.UsageRetention),
		id:          newServerID(),
		sem:         make(chan struct{}, cfg.MaxInFlight),
		nodeSem:     make(chan struct{}, cfg.NodeMaxInFlight),
		synced:      make(chan struct{}),
	}, nil
}

// Run starts the server and serves until ctx ends, then stops it. It returns
// nil on a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Stop()
}

// Start creates the JetStream assets (logs stream, module store) and the
// "default" namespace, starts the store watch, waits until its cache holds
// the current state, and registers the micro service. It returns once
// requests are being served; the server runs until Stop or ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if err := s.ensureAssets(ctx); err != nil {
		return err
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.revs = &revBatch{fetch: s.st.LastRevision, ctx: s.ctx}
	go func() {
		select {
		case <-ctx.Done():
			s.cancel()
		case <-s.ctx.Done():
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchLoop(s.ctx)
	}()
	select {
	case <-s.synced:
	case <-ctx.Done():
		s.cancel()
		return fmt.Errorf("apiserver: wait for store watch: %w", ctx.Err())
	}
	if err := s.ensureDefaultNamespace(ctx); err != nil {
		s.cancel()
		return err
	}
	if err := s.ensureRBAC(ctx); err != nil {
		s.cancel()
		return err
	}
	if s.cfg.AllocRepairInterval > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.repairLoop(s.ctx)
		}()
	}
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        api.ServiceName,
		Version:     Version,
		Description: "kybernetes API",
	})
	if err != nil {
		s.cancel()
		return fmt.Errorf("apiserver: add micro service: %w", err)
	}
	s.svc = svc
	for _, ep := range s.endpoints() {
		if err := svc.AddEndpoint(ep.name, s.guard(ep), micro.WithEndpointSubject(ep.subject),
			micro.WithEndpointMetadata(map[string]string{"format": ep.request})); err != nil {
			_ = svc.Stop()
			s.cancel()
			return fmt.Errorf("apiserver: add endpoint %s: %w", ep.subject, err)
		}
	}
	if s.shared, err = s.subscribeUsageShare(); err != nil {
		_ = svc.Stop()
		s.cancel()
		return err
	}
	// Make sure the server has the endpoint subscriptions before saying so.
	if err := s.nc.FlushTimeout(10 * time.Second); err != nil {
		_ = svc.Stop()
		s.cancel()
		return fmt.Errorf("apiserver: flush subscriptions: %w", err)
	}
	s.log.Info("apiserver serving", "service", api.ServiceName, "subjects", api.SubjectPrefix+".>")
	return nil
}

// Stop stops serving, waits for requests in flight, and ends the watch.
func (s *Server) Stop() error {
	var err error
	s.stopped.Do(func() {
		if s.svc != nil {
			err = s.svc.Stop()
		}
		if s.shared != nil {
			_ = s.shared.Unsubscribe()
		}
		// Wait for in-flight handlers: fill the semaphores.
		for range cap(s.sem) {
			s.sem <- struct{}{}
		}
		for range cap(s.nodeSem) {
			s.nodeSem <- struct{}{}
		}
		s.closeMu.Lock()
		s.closing = true
		s.closeMu.Unlock()
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		s.backups.removeAll()
	})
	if err != nil {
		return fmt.Errorf("apiserver: stop service: %w", err)
	}
	return nil
}

type endpoint struct {
	name, subject string
	h             func(micro.Request)
	request       string // shown by `nats micro info kyb`
}

func (s *Server) endpoints() []endpoint {
	node := func(verb string) string { return api.NodeSubject("*", verb) }
	return []endpoint{
		{"apply", api.SubjectApply, s.handleApply, "manifest (YAML or JSON, multi-document) -> ApplyReply"},
		{"get", api.SubjectGet, s.handleGet, "GetRequest -> object"},
		{"list", api.SubjectList, s.handleList, "ListRequest -> ListReply (paged by continue)"},
		{"delete", api.SubjectDelete, s.handleDelete, "DeleteRequest -> object"},
		{"authz", api.SubjectAuthz, s.handleAuthz, "AuthzRequest -> AuthzReply (may the caller do this?)"},
		{"watch", api.SubjectWatch, s.handleWatch, "WatchRequest -> stream of WatchEvent"},
		{"logs", api.SubjectLogs, s.handleLogs, "LogsRequest -> stream of log lines"},
		{"modules-push", api.SubjectModulesPush, s.handleModulePush, "ModulePushRequest -> ModuleUpload"},
		{"modules-upload", api.SubjectModulesUpload + ".*", s.handleModuleChunk, "chunk bytes (Kyb-Seq: offset) -> ModuleUploadAck, the last ModuleInfo"},
		{"modules-list", api.SubjectModulesList, s.handleModuleList, "empty -> ModuleList"},
		{"modules-get", api.SubjectModulesGet, s.handleModuleGet, "ModuleRequest -> ModuleInfo"},
		{"backup", api.SubjectBackup, s.handleBackup, "BackupRequest -> stream of backup bytes (cluster-admin)"},
		{"top", api.SubjectTop, s.handleTop, "TopRequest -> TopReply (usage of nodes or pods, with the last hour's series)"},
		{"node-register", node(api.NodeVerbRegister), s.nodeOnly(s.handleRegister), "Node -> Node"},
		{"node-heartbeat", node(api.NodeVerbHeartbeat), s.nodeOnly(s.handleHeartbeat), "Heartbeat -> Ack"},
		{"node-status", node(api.NodeVerbStatus), s.nodeOnly(s.handleNodeStatus), "NodeStatus -> Ack"},
		{"node-podstatus", node(api.NodeVerbPodStatus), s.nodeOnly(s.handlePodStatus), "PodStatusBatch -> Ack"},
		{"node-sync", node(api.NodeVerbSync), s.nodeOnly(s.handleSync), "empty -> PodSync"},
		{"node-events", node(api.NodeVerbEvents), s.nodeOnly(s.handleNodeEvents), "Event (about a pod bound to the node) -> Event as stored"},
		{"node-module", node(api.NodeVerbModule), s.nodeOnly(s.handleNodeModule), "ModuleRequest -> stream of module chunks"},
		{"node-moduleinfo", node(api.NodeVerbModuleInfo), s.nodeOnly(s.handleNodeModuleInfo), "ModuleRequest -> ModuleInfo"},
		{"node-servicewatch", node(api.NodeVerbServiceWatch), s.nodeOnly(s.handleNodeServiceWatch), "ServicesWatchRequest -> stream of WatchEvent (Services, EndpointSlices)"},
		{"node-config", node(api.NodeVerbConfig), s.nodeOnly(s.handleNodeConfig), "ConfigRequest (a ConfigMap or Secret a pod bound to the node references) -> object"},
		{"node-volume", node(api.NodeVerbVolume), s.nodeOnly(s.handleNodeVolume), "VolumeRequest -> PersistentVolume (of a claim of a pod bound to the node)"},
		{"node-volumedeleted", node(api.NodeVerbVolumeDeleted), s.nodeOnly(s.handleNodeVolumeDeleted), "VolumeDeleted -> Ack (the volume is removed)"},
		{"exec", api.SubjectExec, s.handleSession(api.SessionExec), "ExecRequest -> stream of exec frames (api/exec.go)"},
		{"attach", api.SubjectAttach, s.handleSession(api.SessionAttach), "ExecRequest -> stream of exec frames"},
		{"portforward", api.SubjectPortForward, s.handleSession(api.SessionPortForward), "ExecRequest with port -> stream of exec frames"},
		{"exec-input", api.SubjectExecInput, s.handleExecInput, "a client's exec frame (no reply needed)"},
		{"node-exec", node(api.NodeVerbExec), s.nodeOnly(s.handleNodeExec), "a node's exec frame (no reply)"},
		{"node-usage", node(api.NodeVerbUsage), s.nodeOnly(s.handleNodeUsage), "NodeUsageReport -> Ack"},
		{"node-cluster", node(api.NodeVerbCluster), s.nodeOnly(s.handleNodeCluster), "empty -> NodeClusterConfig (service CIDR, cluster DNS IP)"},
	}
}

// track adds a goroutine to those Stop waits for, unless Stop has begun
// (then it returns false and the caller must not start it).
func (s *Server) track() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) ensureAssets(ctx context.Context) error {
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        LogsStream,
		Description: "kybernetes container and module output",
		Subjects:    []string{LogsSubjects},
		Storage:     jetstream.FileStorage,
		MaxAge:      s.cfg.LogsMaxAge,
		MaxBytes:    s.cfg.LogsMaxBytes,
		Discard:     jetstream.DiscardOld,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("apiserver: create stream %s: %w", LogsStream, err)
	}
	evs, err := events.Open(ctx, s.js, events.Config{
		MaxAge: s.cfg.EventsMaxAge, MaxPerObject: s.cfg.EventsPerObject, Replicas: s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	s.events.Store(evs)
	s.modules, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ModulesBucket,
		Description: "kybernetes wasm modules",
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("apiserver: create object store %s: %w", ModulesBucket, err)
	}
	if s.alloc, err = store.OpenAllocations(ctx, s.js, s.cfg.Replicas); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	return nil
}

func (s *Server) ensureDefaultNamespace(ctx context.Context) error {
	kind := api.KindOf(&api.Namespace{})
	if s.cache.get(kind, "", api.DefaultNamespace) != nil {
		return nil
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: api.DefaultNamespace}}
	api.Default(ns)
	ns.Status.Phase = api.NamespaceActive
	err := s.st.Create(ctx, ns)
	if err != nil && !api.IsAlreadyExists(err) {
		return fmt.Errorf("apiserver: create namespace default: %w", err)
	}
	if err == nil {
		s.writeThrough(ns)
	}
	return nil
}

// guard is the one gate of every endpoint, before its handler: a request
// whose reply subject is too long to publish on is dropped unanswered, and
// a kyb.api.v1 request larger than api.MaxRequestBytes is answered 413
// without being decoded.
func (s *Server) guard(ep endpoint) micro.HandlerFunc {
	user := strings.HasPrefix(ep.subject, api.SubjectPrefix+".")
	stream := streams(ep.subject)
	return func(req micro.Request) {
		req = instrument(ep, stream, req)
		if len(req.Reply()) > api.MaxReplySubjectLen {
			s.log.Warn("dropping request with an overlong reply subject", "endpoint", ep.name, "reply_bytes", len(req.Reply()))
			return
		}
		if n := len(req.Data()); user && n > api.MaxRequestBytes {
			syncErr(req, tooLarge(n))
			return
		}
		ep.h(req)
	}
}

// tooLarge is the 413 of a request body of n bytes.
func tooLarge(n int) *api.Status {
	return &api.Status{Code: 413, Reason: api.ReasonTooLarge,
		Message: fmt.Sprintf("request of %d bytes exceeds the limit of %d bytes (1 MiB)", n, api.MaxRequestBytes)}
}

// dispatch runs f in its own goroutine, bounded by MaxInFlight, so one slow
// request does not hold up the endpoint. f must reply with s.reply or
// s.replyErr (never with req.Respond, which races with micro's stats).
func (s *Server) dispatch(req micro.Request, f func(ctx context.Context) ([]byte, error)) {
	s.dispatchOn(s.sem, req, f)
}

// dispatchNode is dispatch for node requests, bounded by NodeMaxInFlight
// apart from user requests: a node's heartbeat never waits for a slot that
// a flood of applies holds.
func (s *Server) dispatchNode(req micro.Request, f func(ctx context.Context) ([]byte, error)) {
	s.dispatchOn(s.nodeSem, req, f)
}

func (s *Server) dispatchOn(sem chan struct{}, req micro.Request, f func(ctx context.Context) ([]byte, error)) {
	select {
	case sem <- struct{}{}:
	case <-s.ctx.Done():
		// Stopping: a request drained from the subscription after Stop.
		s.replyErr(req.Reply(), api.NewUnavailable("apiserver is shutting down; retry"))
		return
	}
	go func() {
		defer func() { <-sem }()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		b, err := f(ctx)
		observeReply(req, err)
		if err != nil {
			s.replyErr(req.Reply(), err)
			return
		}
		s.reply(req.Reply(), b)
	}()
}

func (s *Server) reply(subject string, b []byte) {
	if subject == "" {
		return
	}
	err := s.nc.Publish(subject, b)
	if errors.Is(err, nats.ErrMaxPayload) {
		s.replyErr(subject, &api.Status{Code: 413, Reason: api.ReasonTooLarge,
			Message: fmt.Sprintf("reply of %d bytes exceeds the max payload %d", len(b), s.nc.MaxPayload())})
		return
	}
	if err != nil {
		s.log.Warn("reply failed", "err", err)
	}
}

// toStatus turns err into an api.Status: a Status as is, context ends as
// 503, anything else as 500.
func toStatus(err error) *api.Status {
	var st *api.Status
	if errors.As(err, &st) {
		return st
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return api.NewUnavailable("%v", err)
	}
	return api.NewInternal(err)
}

// errorMsg builds the micro error reply for err: code and message in the
// micro headers, the Status JSON as body.
func errorMsg(subject string, err error) *nats.Msg {
	st := toStatus(err)
	body, _ := jsonMarshal(st)
	desc := st.Message
	if desc == "" {
		desc = st.Reason
	}
	return &nats.Msg{
		Subject: subject,
		Header: nats.Header{
			micro.ErrorHeader:     []string{desc},
			micro.ErrorCodeHeader: []string{fmt.Sprint(st.Code)},
		},
		Data: body,
	}
}

func (s *Server) replyErr(subject string, err error) {
	if subject == "" {
		return
	}
	if st := toStatus(err); st.Code >= 500 {
		s.log.Error("request failed", "err", err)
	}
	if perr := s.nc.PublishMsg(errorMsg(subject, err)); perr != nil {
		s.log.Warn("reply failed", "err", perr)
	}
}

// syncErr replies err through micro's own req.Error (counted in the service
// stats); for use in the handler goroutine only.
func syncErr(req micro.Request, err error) {
	m := errorMsg("", err)
	_ = req.Error(m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader), m.Data)
}
