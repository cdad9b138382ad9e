// Package wasm runs pods as WebAssembly (WASI preview1) modules on wazero,
// in the agent process: the "wasm" runtime class.
//
// # Modules
//
// A container's image names a module:
//
//	file:///abs/path/mod.wasm      a file on the node (development), only
//	                               beneath Config.ModuleDirs (--module-dir)
//	kyb://NAME                     a module pushed to the cluster (kyb module
//	                               push), served by Config.Modules (a
//	                               ModuleStore; on an agent, node.Modules
//	                               fetches it through the node API)
//	registry/repo:tag, ...@sha256  an OCI artifact: a layer of media type
//	                               application/vnd.wasm.content.layer.v1+wasm
//	                               or application/vnd.module.wasm.content.layer.v1+wasm,
//	                               or an image whose layer is a tar holding a .wasm
//
// The bytes are kept under CacheDir by content digest and the reported
// ImageRef is the reference without tag plus "@sha256:<hex of the module
// bytes>" (for OCI too: the module's digest, not the manifest's), so a
// container runs the module it was created with even if the source moves on.
// A file:// or kyb:// reference may itself carry "@sha256:<hex>": the module
// with those bytes is used when the node has it, and otherwise fetched and
// checked (ModuleNotFound when the source now holds other bytes). For OCI
// references a digest is the manifest's, as usual.
// Each digest is compiled once per process (and once per node thanks to
// wazero's compilation cache in CacheDir) and instantiated per run.
//
// What a module reference may make the node read is bounded. A file://
// module is read only when its path lies beneath one of Config.ModuleDirs
// (none by default: file:// is refused, naming --module-dir); a path
// outside them is refused before anything is looked up, so the answer for
// file:///etc/shadow says nothing of whether it exists. The path is then
// resolved beneath that directory with os.Root (a symlink may not lead out
// of it), and only a regular file is read (file:///dev/zero or a FIFO fails
// at once with InvalidModule). Every source (file, kyb://, OCI) is read
// with one size cap, Config.MaxModuleBytes, and stops when the request's
// context ends. A kyb:// module's bytes are checked against the digest its
// store gives.
//
// Failures carry reasons: bytes that are not a valid module, or import
// something other than wasi_snapshot_preview1, or are over the size cap, or
// a file that is not a regular file, are InvalidModule (not retryable); a
// missing file, object or artifact is ModuleNotFound (retryable); a
// registry or module store that cannot be reached, or bytes that do not
// match their digest, are ErrImagePull (retryable); a malformed reference is
// InvalidImageName; a file:// module outside the allowed directories is
// ModuleNotAllowed (not retryable).
//
// # Running
//
// argv is the container name followed by Command and Args; Env is the
// environment (plus PWD=WorkingDir when set, which Go's wasip1 port uses as
// its working directory); stdout and stderr are appended to LogPath; each
// Mount is a preopened directory at its container path (read-only when
// asked: every change fails with EROFS) and nothing else of the host is
// visible. Every path beneath a mount resolves beneath its host directory,
// symlinks included (internal/rootfs, over os.Root; wazero's own DirFS
// follows symlinks out, wazero issue #2321): a module can create
// "esc -> ../../../../etc" but reading or writing through it fails with
// EPERM, while a symlink that stays inside works. A mount whose host
// directory is missing fails the start. The clocks are the host's
// and random numbers come from crypto/rand. MemoryLimitBytes caps the linear
// memory (rounded down to 64 KiB pages); a container that sets none gets
// Config.DefaultMemoryLimitBytes (DefaultMemoryLimit, 256 MiB, unless
// configured; negative for none). A module that fails (non-zero exit
// or trap) after a memory.grow was refused ends with reason OOMKilled,
// keeping its exit code (a Go module panics "out of memory" and exits 2);
// one that copes and exits 0 completed. WASI has no signals, so
// StopContainer ends a module at once (the grace period is not waited),
// by cancelling its context: the module is closed at its next function call
// or loop iteration, and a sleep in poll_oneoff is cut short. A module that
// is stopped reports exit code 137, reason Error. A module that returns from
// _start exits 0; proc_exit(N) exits N; a trap exits 134 with the trap as
// message.
//
// # HTTP (WAGI)
//
// A container that declares a TCP containerPort is served the CGI way in
// process (runtimes.HTTPServer.ServeContainerHTTP: the node's proxy hands
// it a Service's requests; ProbeHTTP), and a port mapping that has a
// HostPort (its own, or the sandbox's for a ContainerPort the container
// declares) is also served on HostIP:HostPort (Config.HTTP.DefaultHostIP, by default 0.0.0.0,
// when HostIP is empty): one instantiation per request, the request in the
// CGI environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
// CONTENT_LENGTH, HTTP_*, SERVER_*, REMOTE_ADDR, ...) and on stdin, the
// response on stdout as CGI headers ("Status:", "Content-Type:",
// "Location:", others passed on) then the body; stderr goes to the log. A
// Go module serves with net/http/cgi.Serve. Each request has a timeout
// (504 when it passes). Requests in flight are capped per pod
// (HTTPConfig.MaxConcurrent, or the pod's own kyb.dev/wagi-max-concurrency
// passed as SandboxConfig.WAGIMaxConcurrency) and per node
// (MaxConcurrentPerNode); a request over a cap waits up to QueueTimeout (or
// until its client leaves) for a slot, then gets 503 with Retry-After; the
// queue of each cap holds QueueFactor times its size, and a request beyond
// it gets 503 at once. A request's whole body must arrive
// within BodyReadTimeout of its headers, else 408. A body of at most 64 KiB
// is read before the request takes a slot, so a client that trickles it
// holds no module instance; a larger one is streamed to the module (a
// chunked one is read whole first, as CGI needs its length). The slots are given back when the module is done, before its
// (buffered) response is written, which has RequestTimeout to be taken.
// Each CGI variable has one value: CONTENT_LENGTH and CONTENT_TYPE come
// only from the request's real length and Content-Type; a header becomes
// HTTP_<NAME> only when its name is ASCII letters, digits and '-' (so
// "X_Foo" cannot pose as "X-Foo"); Proxy is dropped (httpoxy); a repeated
// header is joined with ", ". Such a container is running while it
// listens, and exits 0 when stopped.
//
// # Probes
//
// The runtime implements runtimes.Execer and runtimes.HTTPProber, so that
// the agent probes a wasm pod without a network: ExecSync runs a new
// instance of the running container's module with argv = the container's
// name followed by the command (a Go module sees os.Args[1:] == command),
// the container's env, working directory, mounts and memory limit, and no
// stdin, killed past its timeout; ProbeHTTP serves a request through the
// WAGI handler of the container port in process, with the same request
// slots and limits as a request from the network, and returns its status.
//
// # Attach
//
// A command module created with Stdin reads a bounded pipe the runtime
// keeps while it runs (attach.go, runtimes.Attacher); attachments write to
// it, and a StdinOnce module reads end of input when the first one closes.
// A module has no terminal (TTY is refused), and a WAGI container's stdin
// is each request's body (Stdin with ports is refused).
//
// # Defaults
//
// Chosen for a node that shares its process with the control plane (kyb
// up), so that no pod spec or client can exhaust it; each is a Config
// setting:
//
//	DefaultMemoryLimitBytes    256 MiB   per instance (per request for WAGI)
//	MaxModuleBytes             128 MiB   any module, from any source
//	ModuleDirs                 none      file:// refused
//	HTTP.MaxConcurrent         max(8, 2×GOMAXPROCS) per pod
//	HTTP.MaxConcurrentPerNode  max(32, 8×GOMAXPROCS) per node
//	HTTP.QueueTimeout          1s
//	HTTP.QueueFactor           16        waiters per slot, per cap
//	HTTP.BodyReadTimeout       30s
//	HTTP.RequestTimeout        30s
//	HTTP.MaxBodyBytes          64 MiB    a chunked request body, a response
//
// # Restarts
//
// Modules cannot outlive the agent process. The runtime keeps its
// sandboxes and containers in state files under StateDir; a new instance
// lists them, reporting the ones that were running as exited with reason
// AgentRestarted (exit code 255).
package wasm

// Design notes (decisions, written once):
//
//   - One wazero runtime per Runtime, shared by every module. Memory limits
//     are per container, so they are enforced by a memory allocator given
//     to each instantiation (experimental.WithMemoryAllocator), not by
//     RuntimeConfig.WithMemoryLimitPages, which is per wazero runtime and
//     would force a runtime (and a compilation) per distinct limit. The
//     allocator also tells a refused memory.grow apart from any other
//     failure, which is how OOMKilled is detected without reading logs.
//   - Modules are rewritten before compiling only in ways that keep their
//     meaning (internal/wasmbin.MergeData joins Go's tens of thousands of
//     data segments); the digest reported is always the original bytes'.
//   - WASI preview1 only: preview2/components and wasi-http are not served.
//     Sockets are not offered to modules; HTTP reaches them through WAGI.
//   - No registry credentials yet: OCI pulls are anonymous.
//   - The memory limit is per instance, as wazero allocates it: a WAGI
//     container's requests each get the limit, and MaxConcurrent and
//     MaxConcurrentPerNode bound how many run at once. (Sharing one limit
//     among a container's requests would make requests fail each other
//     under load; the node-wide cap bounds the total instead.)
//   - The request slots are per pod, not per container or port, since a
//     pod is what a user scales; the pod cap is taken before the node cap,
//     always in that order.
