package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Name is the runtime class this runtime serves.
const Name = "containerd"

// Defaults for Config fields left empty.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "kyb"
	DefaultStateDir    = "/var/lib/kyb/containerd"
	DefaultNetworkName = "kyb"
	DefaultBridge      = "kyb0"
	// DefaultSeccompProfileDir holds the profiles of seccompProfile type
	// Localhost, as the kubelet's <root-dir>/seccomp does.
	DefaultSeccompProfileDir = "/var/lib/kyb/seccomp"
	// DefaultPidsLimit caps the processes (threads included) of a
	// container that sets no limit, so that a fork bomb cannot take the
	// node's PIDs.
	DefaultPidsLimit = 4096
)

// AddressEnv names the environment variable that overrides DefaultAddress
// as the default of kyb's --containerd-address flags (and the tests' socket).
const AddressEnv = "KYB_CONTAINERD_ADDRESS"

// EnvAddress is $KYB_CONTAINERD_ADDRESS when set, else DefaultAddress.
func EnvAddress() string {
	if a := os.Getenv(AddressEnv); a != "" {
		return a
	}
	return DefaultAddress
}

// DefaultCNIBinDirs are searched for CNI plugins when Config.CNIBinDirs is empty.
var DefaultCNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Config configures a Runtime. The zero value of every field means its default.
type Config struct {
	// Address is containerd's socket (DefaultAddress).
	Address string
	// Namespace is the containerd namespace all objects live in (DefaultNamespace).
	Namespace string
	// StateDir holds sandbox records, network namespace files and the
	// host-local IP allocations (DefaultStateDir).
	StateDir string
	// CNIBinDirs are searched for CNI plugins (DefaultCNIBinDirs).
	CNIBinDirs []string
	// IPAMDir is where host-local keeps its IP allocations, one file per
	// IP under IPAMDir/<network name> (StateDir/cni/networks).
	IPAMDir string
	// CNIConfDir, when set, is a directory of CNI network configs used
	// instead of the generated bridge network; PodCIDR is then unused.
	CNIConfDir string
	// NetworkName and BridgeName name the generated CNI network and its
	// Linux bridge (DefaultNetworkName, DefaultBridge).
	NetworkName string
	BridgeName  string
	// PodCIDR is the node's pod address range, e.g. 10.244.1.0/24. It may be
	// set later with SetPodCIDR or per sandbox (SandboxConfig.PodCIDR).
	PodCIDR string
	// InsecureRegistries are registry hosts (host or host:port) pulled over
	// plain HTTP. localhost and 127.0.0.1 always are.
	InsecureRegistries []string
	// LogDriver is the binary the containerd shim starts to append a
	// container's stdout and stderr to its log file; the binary must call
	// LogDriverMain first thing in main. Empty means the running program
	// (os.Executable). "file" uses the shim's own file logging instead, which
	// containerd 1.6 races on: stderr written just before exit can be lost.
	// New probes the binary and falls back to "file" when it does not
	// answer (and for Go test binaries).
	LogDriver string
	// Snapshotter names the containerd snapshotter; empty means overlayfs
	// when the daemon supports it, else native.
	Snapshotter string
	// SeccompProfileDir holds the profiles that seccompProfile type
	// Localhost names (DefaultSeccompProfileDir).
	SeccompProfileDir string
	// PidsLimit is the pids limit of a container whose ContainerConfig sets
	// none (DefaultPidsLimit); negative means no limit.
	PidsLimit int64
	// EmptyDirCheckInterval is how often the size of each disk emptyDir
	// with a sizeLimit is measured (10s, as the kubelet's eviction manager).
	EmptyDirCheckInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.IPAMDir == "" {
		c.IPAMDir = filepath.Join(c.StateDir, "cni", "networks")
	}
	if len(c.CNIBinDirs) == 0 {
		c.CNIBinDirs = DefaultCNIBinDirs
	}
	if c.NetworkName == "" {
		c.NetworkName = DefaultNetworkName
	}
	if c.BridgeName == "" {
		c.BridgeName = DefaultBridge
	}
	if c.SeccompProfileDir == "" {
		c.SeccompProfileDir = DefaultSeccompProfileDir
	}
	if c.PidsLimit == 0 {
		c.PidsLimit = DefaultPidsLimit
	}
	if c.EmptyDirCheckInterval <= 0 {
		c.EmptyDirCheckInterval = 10 * time.Second
	}
	return c
}

// Runtime runs pods on containerd. It implements runtimes.Runtime,
// runtimes.ImageLister, runtimes.ImageImporter and runtimes.StatsProvider.
// It is safe for concurrent use.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	client *cclient.Client

	snapMu      sync.Mutex
	snapshotter string

	net *network

	// sbMu serialises changes to sandbox records.
	sbMu sync.Mutex

	// uidLocks serialise CreateSandbox per pod UID (see lockUID).
	uidMu    sync.Mutex
	uidLocks map[string]*uidLock

	oomMu   sync.Mutex
	oomSeen map[string]bool
	// evicted holds why a container was killed for its pod's emptyDir
	// size limit (guarded by oomMu).
	evicted map[string]string
	stopOOM context.CancelFunc
}

var (
	_ runtimes.Runtime       = (*Runtime)(nil)
	_ runtimes.ImageLister   = (*Runtime)(nil)
	_ runtimes.ImageImporter = (*Runtime)(nil)
	_ runtimes.StatsProvider = (*Runtime)(nil)
)

// New returns a Runtime that talks to the containerd at cfg.Address. It
// does not require the daemon to answer yet (Info tells whether it does);
// it fails on bad configuration or when StateDir cannot be created.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Runtime, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("runtime", Name)
	if cfg.PodCIDR != "" {
		if _, err := netip.ParsePrefix(cfg.PodCIDR); err != nil {
			return nil, fmt.Errorf("containerd runtime: config PodCIDR %q: %w", cfg.PodCIDR, err)
		}
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "sandboxes"), filepath.Join(cfg.StateDir, "netns")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerd runtime: create state dir: %w", err)
		}
	}
	c, err := cclient.New(cfg.Address, cclient.WithDefaultNamespace(cfg.Namespace), cclient.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: connect %s: %w", cfg.Address, err)
	}
	r := &Runtime{
		cfg:         cfg,
		log:         log,
		client:      c,
		snapshotter: cfg.Snapshotter,
		oomSeen:     map[string]bool{},
		evicted:     map[string]string{},
		uidLocks:    map[string]*uidLock{},
	}
	r.cfg.LogDriver = resolveLogDriver(ctx, cfg.LogDriver, log)
	r.net = newNetwork(cfg, log)
	if cfg.PodCIDR != "" {
		if err := r.net.setCIDR(cfg.PodCIDR); err != nil {
			c.Close()
			return nil, fmt.Errorf("containerd runtime: %w", err)
		}
	}
	octx, cancel := context.WithCancel(context.Background())
	r.stopOOM = cancel
	go r.watchOOM(octx)
	go r.watchEmptyDirs(octx)
	return r, nil
}

// Close releases the connection to containerd. Containers and sandboxes
// keep running; a new Runtime adopts them.
func (r *Runtime) Close() error {
	r.stopOOM()
	return r.client.Close()
}

// SetPodCIDR sets the node's pod address range used for sandboxes created
// from now on. Safe for concurrent use.
func (r *Runtime) SetPodCIDR(cidr string) error {
	if err := r.net.setCIDR(cidr); err != nil {
		return fmt.Errorf("containerd runtime: set pod CIDR: %w", err)
	}
	return nil
}

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// Info returns the runtime's name and the daemon's version, or an error
// wrapping runtimes.ErrUnavailable when the daemon does not answer within
// a few seconds.
func (r *Runtime) Info(ctx context.Context) (runtimes.Info, error) {
	ctx, cancel := context.WithTimeout(r.ns(ctx), 3*time.Second)
	defer cancel()
	v, err := r.client.Version(ctx)
	if err != nil {
		return runtimes.Info{}, fmt.Errorf("containerd at %s: version: %w: %w", r.cfg.Address, runtimes.ErrUnavailable, err)
	}
	return runtimes.Info{Name: Name, Version: v.Version}, nil
}

// snapshotterName returns the snapshotter to use, probing the daemon once.
func (r *Runtime) snapshotterName(ctx context.Context) (string, error) {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	if r.snapshotter != "" {
		return r.snapshotter, nil
	}
	resp, err := r.client.IntrospectionService().Plugins(ctx, `type=="io.containerd.snapshotter.v1"`)
	if err != nil {
		return "", fmt.Errorf("list snapshotters: %w", mapErr(err))
	}
	ok := map[string]bool{}
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			ok[p.ID] = true
		}
	}
	switch {
	case ok["overlayfs"]:
		r.snapshotter = "overlayfs"
	case ok["native"]:
		r.snapshotter = "native"
	default:
		return "", errors.New("containerd has neither the overlayfs nor the native snapshotter")
	}
	r.log.Debug("snapshotter chosen", "snapshotter", r.snapshotter)
	return r.snapshotter, nil
}

// mapErr adds the runtimes error classes to containerd errors.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", runtimes.ErrNotFound, err)
	case errdefs.IsUnavailable(err):
		return fmt.Errorf("%w: %w", runtimes.ErrUnavailable, err)
	}
	return err
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
