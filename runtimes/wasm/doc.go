// Package wasm runs pods as WebAssembly (WASI preview1) modules on wazero,
// in the agent process: the "wasm" runtime class.
//
// # Modules
//
// A container's image names a module:
//
//	file:///abs/path/mod.wasm      a file on the node (development)
//	kyb://NAME                     an object in the cluster's object store
//	                               (kyb module push), needs Config.ObjectStore
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
// Failures carry reasons: bytes that are not a valid module, or import
// something other than wasi_snapshot_preview1, are InvalidModule (not
// retryable); a missing file, object or artifact is ModuleNotFound
// (retryable); a registry that cannot be reached is ErrImagePull (retryable);
// a malformed reference is InvalidImageName.
//
// # Running
//
// argv is the container name followed by Command and Args; Env is the
// environment (plus PWD=WorkingDir when set, which Go's wasip1 port uses as
// its working directory); stdout and stderr are appended to LogPath; each
// Mount is a preopened directory at its container path (read-only when
// asked) and nothing else of the host is visible; the clocks are the host's
// and random numbers come from crypto/rand. MemoryLimitBytes caps the linear
// memory (rounded down to 64 KiB pages): a module that fails (non-zero exit
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
// A container with a port mapping that has a HostPort (its own, or the
// sandbox's for a ContainerPort the container declares) is served the CGI
// way on HostIP:HostPort (Config.HTTP.DefaultHostIP, by default 0.0.0.0,
// when HostIP is empty): one instantiation per request, the request in the
// CGI environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
// CONTENT_LENGTH, HTTP_*, SERVER_*, REMOTE_ADDR, ...) and on stdin, the
// response on stdout as CGI headers ("Status:", "Content-Type:",
// "Location:", others passed on) then the body; stderr goes to the log. A
// Go module serves with net/http/cgi.Serve. Each request has a timeout
// (504 when it passes) and the requests in flight per container are capped
// (503 beyond). Such a container is running while it listens, and exits 0
// when stopped.
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
