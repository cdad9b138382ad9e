package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/internal/inproc"
)

// The exit code the runtime reports for a trap, besides those of
// runtimes/reasons.go.
const (
	ExitCodeTrap = 134 // a trap (unreachable, out of bounds, ...)
)

// Config configures the wasm runtime.
type Config struct {
	// StateDir holds the runtime's state files. Required.
	StateDir string
	// CacheDir holds module bytes by digest and wazero's compiled code;
	// StateDir/cache when empty.
	CacheDir string
	// Modules serves kyb://NAME modules; nil makes them unsupported.
	// On an agent it is node.Modules, which fetches through the node API.
	Modules ModuleStore
	// LostMessage is the message of a container that was running when the
	// process that ran it ended, as the next instance reports it (reason
	// AgentRestarted); the engine's default names the agent.
	LostMessage string
	// ModuleDirs are the absolute host directories file:// modules may be
	// read from (the agent's --module-dir). A file:// module is resolved
	// beneath the directory that holds it (a symlink may not lead out of
	// it) and must be a regular file. Empty: file:// modules are refused.
	ModuleDirs []string
	// MaxModuleBytes caps a module's size, from every source (file://,
	// kyb:// and OCI); DefaultMaxModuleBytes when zero.
	MaxModuleBytes int64
	// DefaultMemoryLimitBytes is the memory limit of a container that sets
	// none (MemoryLimitBytes 0); DefaultMemoryLimit when zero, no limit
	// when negative.
	DefaultMemoryLimitBytes int64
	// InsecureRegistries are registry hosts (host or host:port) reached
	// over plain HTTP. Loopback registries always are.
	InsecureRegistries []string
	// HTTP configures WAGI serving.
	HTTP HTTPConfig
}

// HTTPConfig configures how containers with host ports are served.
type HTTPConfig struct {
	// DefaultHostIP is the address served when a port mapping has no
	// HostIP; "0.0.0.0" when empty.
	DefaultHostIP string
	// RequestTimeout bounds one request's instance; 30s when zero.
	RequestTimeout time.Duration
	// MaxConcurrent caps the requests in flight per pod (all its serving
	// containers); max(8, 2×GOMAXPROCS) when zero.
	MaxConcurrent int
	// MaxConcurrentPerNode caps the requests in flight of every pod of
	// the runtime together; max(32, 8×GOMAXPROCS) when zero.
	MaxConcurrentPerNode int
	// QueueTimeout is how long a request over either cap waits for a slot
	// (or until its client goes away) before it is answered 503 with
	// Retry-After; 1s when zero.
	QueueTimeout time.Duration
	// QueueFactor bounds the queue of each cap: at most QueueFactor times
	// the cap's requests wait for a slot; more are answered 503 at once,
	// so that a flood holds a bounded number of connections and goroutines.
	// 16 when zero.
	QueueFactor int
	// BodyReadTimeout bounds the time to receive a request's whole body,
	// from when its headers were read: a client that trickles its body is
	// cut off with 408; 30s when zero.
	BodyReadTimeout time.Duration
	// MaxBodyBytes caps a response's size, and a chunked request body's
	// (read whole to learn its CONTENT_LENGTH); 64 MiB when zero.
	MaxBodyBytes int64
}

// Defaults of Config.
const (
	// DefaultMaxModuleBytes is the default cap of a module's size: larger
	// than any common WASI module (CPython is about 25 MiB), small enough
	// that a hostile reference cannot make the agent hold gigabytes.
	DefaultMaxModuleBytes = 128 << 20
	// DefaultMemoryLimit is the memory limit of a container that sets
	// none. WebAssembly's 32-bit memories could otherwise grow to 4 GiB
	// each, with nothing in the pod's spec to say so.
	DefaultMemoryLimit = 256 << 20
)

// Runtime runs WASI modules. It is safe for concurrent use.
type Runtime struct {
	*inproc.Engine
	cfg   Config
	log   *slog.Logger
	wz    wazero.Runtime
	cache wazero.CompilationCache
	wasi  map[string]bool // functions wasi_snapshot_preview1 exports

	mu      sync.Mutex
	mods    map[string]*module // by digest
	refs    map[string]string  // ref -> digest, from the last resolve
	files   map[string]fileSeen
	usage   map[string]*usage     // memory, instances and CPU time, by container
	stdins  map[string]*stdinPipe // stdin of running modules created with Stdin (attach.go)
	pods    map[string]*podSlots  // WAGI request slots, by pod
	node    *slots                // WAGI request slots of the node
	closeFn func()
}

var (
	_ runtimes.Runtime       = (*Runtime)(nil)
	_ runtimes.ImageLister   = (*Runtime)(nil)
	_ runtimes.StatsProvider = (*Runtime)(nil)
)

// New returns a wasm runtime, loading the state a previous instance left in
// cfg.StateDir. log may be nil. Call Close when done.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("wasm runtime: Config.StateDir is required")
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.StateDir, "cache")
	}
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if cfg.DefaultMemoryLimitBytes == 0 {
		cfg.DefaultMemoryLimitBytes = DefaultMemoryLimit
	}
	dirs := make([]string, 0, len(cfg.ModuleDirs))
	for _, d := range cfg.ModuleDirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("wasm runtime: module directory %q (--module-dir): must be absolute", d)
		}
		dirs = append(dirs, filepath.Clean(d))
	}
	cfg.ModuleDirs = dirs
	if cfg.HTTP.DefaultHostIP == "" {
		cfg.HTTP.DefaultHostIP = "0.0.0.0"
	}
	if cfg.HTTP.RequestTimeout == 0 {
		cfg.HTTP.RequestTimeout = 30 * time.Second
	}
	if cfg.HTTP.MaxConcurrent <= 0 {
		cfg.HTTP.MaxConcurrent = max(8, 2*runtime.GOMAXPROCS(0))
	}
	if cfg.HTTP.MaxConcurrentPerNode <= 0 {
		cfg.HTTP.MaxConcurrentPerNode = max(32, 8*runtime.GOMAXPROCS(0))
	}
	if cfg.HTTP.QueueFactor <= 0 {
		cfg.HTTP.QueueFactor = 16
	}
	if cfg.HTTP.QueueTimeout <= 0 {
		cfg.HTTP.QueueTimeout = time.Second
	}
	if cfg.HTTP.BodyReadTimeout <= 0 {
		cfg.HTTP.BodyReadTimeout = 30 * time.Second
	}
	if cfg.HTTP.MaxBodyBytes == 0 {
		cfg.HTTP.MaxBodyBytes = 64 << 20
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.CacheDir, "modules"), filepath.Join(cfg.CacheDir, "compiled")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("wasm runtime: %w", err)
		}
	}
	cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(cfg.CacheDir, "compiled"))
	if err != nil {
		return nil, fmt.Errorf("wasm runtime: compilation cache: %w", err)
	}
	ctx := context.Background()
	wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithCompilationCache(cache))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		wz.Close(ctx)
		return nil, fmt.Errorf("wasm runtime: instantiate WASI: %w", err)
	}
	r := &Runtime{
		cfg: cfg, log: log, wz: wz, cache: cache,
		wasi: map[string]bool{}, mods: map[string]*module{}, refs: map[string]string{}, files: map[string]fileSeen{}, usage: map[string]*usage{}, stdins: map[string]*stdinPipe{},
		pods: map[string]*podSlots{}, node: newSlots(cfg.HTTP.MaxConcurrentPerNode, cfg.HTTP.MaxConcurrentPerNode*cfg.HTTP.QueueFactor),
	}
	if wm := wz.Module(wasi_snapshot_preview1.ModuleName); wm != nil {
		for name := range wm.ExportedFunctionDefinitions() {
			r.wasi[name] = true
		}
	}
	r.Engine, err = inproc.New(inproc.Config{StateDir: cfg.StateDir, Prepare: r.prepare, Start: r.start, Log: log, LostMessage: cfg.LostMessage})
	if err != nil {
		wz.Close(ctx)
		return nil, fmt.Errorf("wasm runtime: %w", err)
	}
	return r, nil
}

// Close kills every running module (they are reported exited with reason
// AgentRestarted by the next instance) and releases the compiled code.
func (r *Runtime) Close() error {
	r.Engine.Close()
	ctx := context.Background()
	err := r.wz.Close(ctx)
	if cerr := r.cache.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// Info implements runtimes.Runtime.
func (r *Runtime) Info(ctx context.Context) (runtimes.Info, error) {
	return runtimes.Info{Name: "wasm", Version: "wazero/v1.12.0"}, nil
}

// EnsureImage implements runtimes.Runtime: it fetches the module according
// to policy, stores it by digest and compiles it, so that a module that is
// not valid fails here with InvalidModule.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy runtimes.PullPolicy, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	return r.EnsureImageWithAuth(ctx, ref, policy, nil, progress)
}

// EnsureImageWithAuth implements runtimes.AuthPuller: EnsureImage, where
// the pull of an OCI artifact logs in to its registry with the matching
// login of auth (a pod's imagePullSecrets).
func (r *Runtime) EnsureImageWithAuth(ctx context.Context, ref string, policy runtimes.PullPolicy, auth []runtimes.RegistryAuth, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	img, err := r.ensure(ctx, ref, policy, auth)
	if err != nil {
		return nil, fmt.Errorf("ensure module %s: %w", ref, err)
	}
	if progress != nil {
		progress(runtimes.PullProgress{Ref: ref, Done: img.Size, Total: img.Size, Layers: 1, LayersDone: 1})
	}
	return img, nil
}

func (r *Runtime) ensure(ctx context.Context, ref string, policy runtimes.PullPolicy, auth []runtimes.RegistryAuth) (*runtimes.Image, error) {
	base, pinned := splitPinned(ref)
	if pinned != "" && !isOCI(base) {
		// Even a module the node holds is not used through a file
		// reference it would refuse.
		if src, err := parseRef(base); err == nil && src.kind == srcFile {
			if _, _, err := r.moduleDir(src.path); err != nil {
				return nil, err
			}
		}
		// file://...@sha256:X and kyb://NAME@sha256:X name one module's
		// bytes: use them when present, else fetch and check.
		if _, err := os.Stat(r.blobPath(pinned)); err != nil {
			img, err := r.ensure(ctx, base, policy, auth)
			if err != nil {
				return nil, err
			}
			if img.Digest != pinned {
				return nil, runtimes.WithReason(runtimes.ReasonModuleNotFound, true, runtimes.NotFoundf("module %s is now %s, not the pinned %s", base, img.Digest, pinned))
			}
		}
		m, err := r.module(ctx, pinned)
		if err != nil {
			return nil, err
		}
		return &runtimes.Image{Ref: ref, Digest: pinned, Size: m.size}, nil
	}
	src, err := parseRef(ref)
	if src != nil {
		src.auth = auth
	}
	if err != nil {
		return nil, err
	}
	known := r.knownDigest(ref)
	var digest string
	switch {
	case policy == runtimes.PullNever && src.kind == srcFile:
		// A file on the node is present: reading it is no pull (as an
		// image already present is, for Kubernetes' Never).
		if digest, err = r.fetch(ctx, src); err != nil {
			return nil, err
		}
	case policy == runtimes.PullNever || (policy == runtimes.PullIfNotPresent && src.kind == srcOCI && known != ""):
		if known == "" {
			return nil, runtimes.WithReason(runtimes.ReasonErrImageNeverPull, false, runtimes.NotFoundf("module %s not present and pull policy is Never", ref))
		}
		digest = known
	default:
		if digest, err = r.fetch(ctx, src); err != nil {
			return nil, err
		}
	}
	m, err := r.module(ctx, digest)
	if err != nil {
		return nil, err
	}
	r.remember(ref, digest)
	return &runtimes.Image{Ref: ref, Digest: digest, Size: m.size}, nil
}

// knownDigest is the digest ref last resolved to on this node, from memory
// or from the ref index under CacheDir (which outlives the process, so that
// imagePullPolicy Never finds a module fetched before an agent restart),
// "" when none or when its bytes are gone.
func (r *Runtime) knownDigest(ref string) string {
	r.mu.Lock()
	d := r.refs[ref]
	r.mu.Unlock()
	if d != "" {
		return d
	}
	b, err := os.ReadFile(r.refPath(ref))
	if err != nil {
		return ""
	}
	d = strings.TrimSpace(string(b))
	if !strings.HasPrefix(d, "sha256:") {
		return ""
	}
	if _, err := os.Stat(r.blobPath(d)); err != nil {
		return ""
	}
	r.mu.Lock()
	r.refs[ref] = d
	r.mu.Unlock()
	return d
}

// remember records what ref resolved to, in memory and in the ref index.
func (r *Runtime) remember(ref, digest string) {
	r.mu.Lock()
	changed := r.refs[ref] != digest
	r.refs[ref] = digest
	r.mu.Unlock()
	if changed {
		// Best effort: without the index, Never only finds what this
		// process resolved.
		p := r.refPath(ref)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			tmp := p + ".tmp"
			if os.WriteFile(tmp, []byte(digest+"\n"), 0o644) == nil {
				_ = os.Rename(tmp, p)
			}
		}
	}
}

// refPath is where the ref index keeps ref's digest: a file named by the
// hash of the reference (a reference may be any length and hold any byte).
func (r *Runtime) refPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(r.cfg.CacheDir, "refs", hex.EncodeToString(sum[:]))
}

// ListImages implements runtimes.ImageLister: the modules resolved by this
// instance.
func (r *Runtime) ListImages(ctx context.Context) ([]*runtimes.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimes.Image
	for ref, d := range r.refs {
		img := &runtimes.Image{Ref: ref, Digest: d}
		if m := r.mods[d]; m != nil {
			img.Size = m.size
		}
		out = append(out, img)
	}
	return out, nil
}

// prepare resolves a container's module at create time and pins it.
func (r *Runtime) prepare(ctx context.Context, sb *runtimes.SandboxConfig, cfg *runtimes.ContainerConfig) (string, error) {
	if cfg.MemoryLimitBytes < 0 {
		return "", fmt.Errorf("memory limit %d: must not be negative", cfg.MemoryLimitBytes)
	}
	for _, m := range cfg.Mounts {
		if !filepath.IsAbs(m.HostPath) || !strings.HasPrefix(m.ContainerPath, "/") {
			return "", fmt.Errorf("mount %q -> %q: both paths must be absolute", m.HostPath, m.ContainerPath)
		}
	}
	if cfg.TTY {
		return "", runtimes.WithReason(runtimes.ReasonCreateContainerConfigError, false, errors.New("tty: a WASI module has no terminal"))
	}
	if cfg.Stdin && len(cfg.Ports) > 0 {
		return "", runtimes.WithReason(runtimes.ReasonCreateContainerConfigError, false, errStdinForWAGI)
	}
	img, err := r.ensure(ctx, cfg.Image, runtimes.PullIfNotPresent, nil)
	if err != nil {
		return "", err
	}
	return pinnedRef(cfg.Image, img.Digest), nil
}

// pinnedRef is ref without tag or digest, at the module's digest.
func pinnedRef(ref, digest string) string {
	base := ref
	if i := strings.LastIndex(base, "@"); i >= 0 {
		base = base[:i]
	}
	if !strings.Contains(base, "://") {
		if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
			base = base[:i]
		}
	}
	return base + "@" + digest
}

func (r *Runtime) start(ctx context.Context, c *inproc.Container) (inproc.Proc, error) {
	_, digest := splitPinned(c.ImageRef) // prepare pinned it
	m, err := r.module(ctx, digest)
	if err != nil {
		return nil, err
	}
	logf, err := inproc.OpenLog(c.Config.LogPath)
	if err != nil {
		return nil, err
	}
	ports := servedPorts(c)
	if len(ports) > 0 {
		p, err := r.serve(c, m, logf, ports)
		if err != nil {
			logf.Close()
			return nil, err
		}
		return p, nil
	}
	p, err := r.runCommand(c, m, logf)
	if err != nil {
		logf.Close()
		return nil, err
	}
	return p, nil
}

// usageOf returns the usage of a container, making it.
func (r *Runtime) usageOf(id string) *usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.usage[id]
	if u == nil {
		u = &usage{}
		r.usage[id] = u
	}
	return u
}

func (r *Runtime) dropUsage(id string) {
	r.mu.Lock()
	delete(r.usage, id)
	r.mu.Unlock()
}

// ContainerStats implements runtimes.StatsProvider: the linear memory its
// instances hold now (all requests in flight, for a WAGI container), how
// many instances run now, and the CPU time they used (on Linux, from the
// CPU clocks of the threads they run on; 0 elsewhere). It returns an error
// wrapping ErrNotFound for an unknown ID.
func (r *Runtime) ContainerStats(ctx context.Context, id string) (*runtimes.Stats, error) {
	if _, err := r.ContainerStatus(ctx, id); err != nil {
		return nil, err
	}
	st := &runtimes.Stats{Time: time.Now()}
	r.mu.Lock()
	u := r.usage[id]
	r.mu.Unlock()
	if u != nil {
		st.MemoryUsageBytes = uint64(max(u.mem.Load(), 0))
		st.Instances = u.instances.Load()
		st.CPUUsageNanos = u.cpuNanos()
	}
	return st, nil
}

// splitPinned splits "REF@sha256:HEX" into REF and "sha256:HEX".
func splitPinned(ref string) (string, string) {
	i := strings.LastIndex(ref, "@sha256:")
	if i < 0 || len(ref)-i-len("@sha256:") != 64 {
		return ref, ""
	}
	if _, err := hex.DecodeString(ref[i+len("@sha256:"):]); err != nil {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

func isOCI(ref string) bool {
	return !strings.Contains(ref, "://") && !strings.HasPrefix(ref, "/")
}

// servedPorts are the TCP ports a container serves: its own mappings with
// a HostPort, the sandbox's mappings (as CRI passes them) whose
// ContainerPort the container declares, and its other declared TCP ports
// with no HostPort (served in process only, for Services and probes:
// ServeContainerHTTP, ProbeHTTP).
func servedPorts(c *inproc.Container) []runtimes.PortMapping {
	tcp := func(p runtimes.PortMapping) bool { return p.Protocol == "" || strings.EqualFold(p.Protocol, "TCP") }
	var ports []runtimes.PortMapping
	seen := map[int32]bool{}
	for _, p := range c.Config.Ports {
		if p.HostPort > 0 && tcp(p) && !seen[p.HostPort] {
			ports = append(ports, p)
			seen[p.HostPort] = true
		}
	}
	for _, sp := range c.Sandbox.Ports {
		if sp.HostPort <= 0 || !tcp(sp) || seen[sp.HostPort] {
			continue
		}
		for _, p := range c.Config.Ports {
			if p.ContainerPort == sp.ContainerPort && tcp(p) {
				ports = append(ports, sp)
				seen[sp.HostPort] = true
				break
			}
		}
	}
	for _, p := range c.Config.Ports {
		if p.ContainerPort <= 0 || !tcp(p) || slices.ContainsFunc(ports, func(q runtimes.PortMapping) bool { return q.ContainerPort == p.ContainerPort }) {
			continue
		}
		p.HostPort, p.HostIP = 0, ""
		ports = append(ports, p)
	}
	return ports
}
