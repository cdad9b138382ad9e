package wasm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/internal/metrics"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/internal/inproc"
)

// wagiProc is a container serving HTTP the CGI way.
type wagiProc struct {
	r       *Runtime
	c       *inproc.Container
	m       *module
	log     *os.File
	stderr  io.Writer
	servers []*http.Server
	// handlers serve in process what each containerPort serves (probes).
	handlers map[int32]http.Handler
	pod      *slots // the pod's request slots (HTTPConfig.MaxConcurrent or the pod's own)
	reqs     inflight

	ctx    context.Context // cancelled on Kill: ends requests in flight
	cancel context.CancelFunc

	done     chan struct{}
	termOnce sync.Once
	wg       sync.WaitGroup
	// stop ends serving in process (ports with no listener): closed by
	// Term or Kill.
	stop     chan struct{}
	stopOnce sync.Once
}

func (p *wagiProc) Done() <-chan struct{} { return p.done }
func (p *wagiProc) Result() inproc.Exit   { return inproc.Exit{} }

// Term stops listening and lets requests in flight finish.
func (p *wagiProc) Term() {
	p.termOnce.Do(func() {
		for _, s := range p.servers {
			go s.Shutdown(context.Background())
		}
	})
	p.stopOnce.Do(func() { close(p.stop) })
}

// Kill stops listening and ends requests in flight.
func (p *wagiProc) Kill() {
	p.cancel()
	for _, s := range p.servers {
		s.Close()
	}
	p.stopOnce.Do(func() { close(p.stop) })
}

func (r *Runtime) serve(c *inproc.Container, m *module, logf *os.File, ports []runtimes.PortMapping) (*wagiProc, error) {
	rc, closeMounts, err := moduleConfig(c)
	if err != nil {
		return nil, err
	}
	pod, dropPod := r.podSlotsOf(&c.Sandbox)
	ctx, cancel := context.WithCancel(context.Background())
	p := &wagiProc{
		r: r, c: c, m: m, log: logf, stderr: &lockedWriter{w: logf},
		pod: pod, handlers: map[int32]http.Handler{},
		ctx: ctx, cancel: cancel, done: make(chan struct{}), stop: make(chan struct{}),
	}
	var lns []net.Listener
	for _, pm := range ports {
		if pm.HostPort == 0 {
			// Served in process only (ServeContainerHTTP, ProbeHTTP).
			if _, ok := p.handlers[pm.ContainerPort]; !ok {
				p.handlers[pm.ContainerPort] = p.handler(rc, pm)
			}
			continue
		}
		ip := pm.HostIP
		if ip == "" {
			ip = r.cfg.HTTP.DefaultHostIP
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(int(pm.HostPort)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			cancel()
			closeMounts()
			dropPod()
			return nil, runtimes.WithReason("HostPortUnavailable", true, fmt.Errorf("listen on %s: %w", addr, err))
		}
		lns = append(lns, ln)
		h := p.handler(rc, pm)
		if _, ok := p.handlers[pm.ContainerPort]; !ok {
			p.handlers[pm.ContainerPort] = h
		}
		srv := &http.Server{
			Handler:           countedHandler(c.Sandbox.Namespace, c.Sandbox.Name, h),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       60 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		p.servers = append(p.servers, srv)
	}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); <-p.stop }()
	for i, srv := range p.servers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := srv.Serve(lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Warn("wagi serve", "container", c.ID, "addr", lns[i].Addr().String(), "err", err)
			}
		}()
	}
	go func() {
		p.wg.Wait()
		// Serve returns at once on Shutdown; wait for the requests in flight.
		p.reqs.drain()
		cancel()
		closeMounts()
		dropPod()
		logf.Close()
		r.dropUsage(c.ID)
		metrics.ForgetWAGIPod(c.Sandbox.Namespace, c.Sandbox.Name)
		close(p.done)
	}()
	r.log.Debug("wagi serving", "container", c.ID, "name", c.Config.Name, "ports", len(ports))
	return p, nil
}

func (p *wagiProc) handler(rc *runConfig, pm runtimes.PortMapping) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !p.reqs.enter() {
			unavailable(w, "the container is stopping")
			return
		}
		defer p.reqs.leave()
		// The whole body must arrive within BodyReadTimeout: a client that
		// trickles it is cut off (408).
		body, ok := p.readBody(w, req)
		if !ok {
			return
		}
		// A request waits briefly for a slot of its pod, then of the node
		// (always in that order), rather than failing at once.
		cfg := p.r.cfg.HTTP
		if !p.pod.acquire(req.Context(), cfg.QueueTimeout) {
			unavailable(w, fmt.Sprintf("too many requests in flight for this pod (%d)", p.pod.size()))
			return
		}
		if !p.r.node.acquire(req.Context(), cfg.QueueTimeout) {
			p.pod.release()
			unavailable(w, fmt.Sprintf("too many requests in flight on this node (%d)", cfg.MaxConcurrentPerNode))
			return
		}
		// The slots bound module instances, not connections: they are
		// given back once the module is done, before its (buffered)
		// response is written to a client that may read it slowly.
		release := sync.OnceFunc(func() { p.r.node.release(); p.pod.release() })
		defer release()
		if !body.finish(p, w, req) {
			return
		}
		p.serveCGI(w, req, rc, pm, body, release)
	})
}

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// limitedBuffer keeps at most max bytes and fails past them.
type limitedBuffer struct {
	buf bytes.Buffer
	max int64
}

var errResponseTooLarge = errors.New("response too large")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if int64(b.buf.Len()+len(p)) > b.max {
		return 0, errResponseTooLarge
	}
	return b.buf.Write(p)
}

// staticCGIEnv is the part of the CGI environment every request shares.
var staticCGIEnv = [][2]string{
	{"SERVER_SOFTWARE", "kyb-wagi"},
	{"SERVER_PROTOCOL", "HTTP/1.1"},
	{"GATEWAY_INTERFACE", "CGI/1.1"},
	{"SCRIPT_NAME", ""},
	{"X_MATCHED_ROUTE", "/..."},
}

// cgiEnv is the per-request CGI/1.1 environment of a request, as
// net/http/cgi builds it, with one value per variable:
//   - CONTENT_LENGTH and CONTENT_TYPE come from the request's real length
//     and Content-Type only, never from HTTP_* look-alikes;
//   - a header becomes HTTP_<NAME> only when its name is letters, digits
//     and '-': a name with '_' (or anything else) is dropped, so that
//     "X_Foo" cannot pose as "X-Foo" (as Apache and nginx do);
//   - Proxy is dropped (httpoxy: it would become HTTP_PROXY);
//   - a header sent more than once is joined with ", " (RFC 9110 5.3).
func cgiEnv(req *http.Request, pm runtimes.PortMapping) [][2]string {
	host, port, _ := net.SplitHostPort(req.Host)
	if host == "" {
		host = req.Host
	}
	if port == "" {
		port = strconv.Itoa(int(pm.HostPort))
	}
	// SERVER_SOFTWARE, SERVER_PROTOCOL, GATEWAY_INTERFACE, SCRIPT_NAME and
	// X_MATCHED_ROUTE are the same for every request: see staticCGIEnv.
	env := [][2]string{
		{"SERVER_NAME", host},
		{"SERVER_PORT", port},
		{"REQUEST_METHOD", req.Method},
		{"REQUEST_URI", req.URL.RequestURI()},
		{"PATH_INFO", req.URL.Path},
		{"QUERY_STRING", req.URL.RawQuery},
		{"HTTP_HOST", req.Host},
	}
	if rh, rp, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		env = append(env, [2]string{"REMOTE_ADDR", rh}, [2]string{"REMOTE_PORT", rp})
	}
	if req.ContentLength > 0 {
		env = append(env, [2]string{"CONTENT_LENGTH", strconv.FormatInt(req.ContentLength, 10)})
	}
	if ct := req.Header.Values("Content-Type"); len(ct) > 0 && ct[0] != "" {
		env = append(env, [2]string{"CONTENT_TYPE", ct[0]})
	}
	for k, v := range req.Header {
		name, ok := cgiHeaderName(k)
		if !ok {
			continue
		}
		switch name {
		case "HTTP_PROXY", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_HOST":
			continue // httpoxy; the others are set above, from the real values
		}
		env = append(env, [2]string{name, strings.Join(v, ", ")})
	}
	return env
}

// cgiHeaderName is HTTP_ and the header's name upper-cased with '-' as
// '_'; false for a name that is not only ASCII letters, digits and '-'.
func cgiHeaderName(k string) (string, bool) {
	if k == "" {
		return "", false
	}
	b := make([]byte, 0, len("HTTP_")+len(k))
	b = append(b, "HTTP_"...)
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		case c == '-':
			b = append(b, '_')
		default:
			return "", false
		}
	}
	return string(b), true
}

// preBodyBytes is the most of a body read before its request takes a
// slot; the rest, if any, is read (chunked) or streamed to the module
// (with a length) once it has one.
const preBodyBytes = 64 << 10

// reqBody is what a module reads on stdin.
type reqBody struct {
	r       io.Reader   // stdin, once ready
	br      *bodyReader // a streamed body: r, remembering a read error
	pending io.Reader   // a chunked body longer than preBodyBytes, to read whole
}

// readBody sets the request's body deadline and reads the body, or its
// first preBodyBytes, before the request takes a slot, so that a client
// trickling a small body holds no module instance. A body with a length
// over preBodyBytes is streamed to the module. It answers the request
// itself (408, 400, 413) and returns false when the body cannot be read.
func (p *wagiProc) readBody(w http.ResponseWriter, req *http.Request) (*reqBody, bool) {
	cfg := p.r.cfg.HTTP
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(cfg.BodyReadTimeout)); err != nil {
		p.r.log.Debug("wagi: no read deadline", "container", p.c.ID, "err", err)
	}
	switch {
	case req.Body == nil || req.ContentLength == 0:
		return &reqBody{r: eofReader{}}, true
	case req.ContentLength > preBodyBytes:
		br := &bodyReader{r: req.Body}
		return &reqBody{r: br, br: br}, true
	}
	// A small body, or a chunked one (CGI needs its length: it is read
	// whole, its first part now).
	b, err := io.ReadAll(io.LimitReader(req.Body, preBodyBytes+1))
	if err != nil {
		p.bodyError(w, req, err)
		return nil, false
	}
	if len(b) > preBodyBytes {
		return &reqBody{pending: io.MultiReader(bytes.NewReader(b), req.Body)}, true
	}
	req.ContentLength = int64(len(b))
	return &reqBody{r: bytes.NewReader(b)}, true
}

// finish reads a pending chunked body whole, up to MaxBodyBytes, answering
// the request and returning false when it cannot.
func (rb *reqBody) finish(p *wagiProc, w http.ResponseWriter, req *http.Request) bool {
	if rb.pending == nil {
		return true
	}
	b, err := io.ReadAll(io.LimitReader(rb.pending, p.r.cfg.HTTP.MaxBodyBytes+1))
	if err != nil {
		p.bodyError(w, req, err)
		return false
	}
	if int64(len(b)) > p.r.cfg.HTTP.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return false
	}
	req.ContentLength = int64(len(b))
	rb.r, rb.pending = bytes.NewReader(b), nil
	return true
}

// serveCGI runs one request's instance, calls release when it is done,
// and writes the response.
func (p *wagiProc) serveCGI(w http.ResponseWriter, req *http.Request, rc *runConfig, pm runtimes.PortMapping, body *reqBody, release func()) {
	ctx, cancel := context.WithTimeout(req.Context(), p.r.cfg.HTTP.RequestTimeout)
	defer cancel()
	out := &limitedBuffer{max: p.r.cfg.HTTP.MaxBodyBytes}
	mc := rc.build(staticCGIEnv, cgiEnv(req, pm)).WithStderr(p.stderr).WithStdin(body.r).WithStdout(out)
	x := p.r.instance(ctx, p.m, mc, p.c.Config.MemoryLimitBytes, p.r.usageOf(p.c.ID), func() bool { return p.ctx.Err() != nil })
	release()
	// A client gets RequestTimeout to take the response, so that one that
	// reads slowly cannot keep it (and its buffer) forever.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(p.r.cfg.HTTP.RequestTimeout))
	if body.br != nil && body.br.err != nil {
		p.bodyError(w, req, body.br.err)
		return
	}
	if ctx.Err() != nil && p.ctx.Err() == nil && req.Context().Err() == nil {
		fmt.Fprintf(p.stderr, "[kyb wagi] %s %s: timed out after %v\n", req.Method, req.URL.Path, p.r.cfg.HTTP.RequestTimeout)
		http.Error(w, "the module did not answer in time", http.StatusGatewayTimeout)
		return
	}
	if x.Code != 0 || x.Reason == runtimes.ReasonOOMKilled {
		fmt.Fprintf(p.stderr, "[kyb wagi] %s %s: module exited %d %s %s\n", req.Method, req.URL.Path, x.Code, x.Reason, x.Message)
		if out.buf.Len() == 0 {
			http.Error(w, "the module failed", http.StatusBadGateway)
			return
		}
	}
	writeCGIResponse(w, &out.buf, p.stderr, req)
}

// bodyReader remembers the first error reading a request body other than
// its end, for the handler to answer it rather than the module's output.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// bodyError answers a request whose body could not be read: 408 when it
// did not arrive in time, 400 otherwise. The connection is closed.
func (p *wagiProc) bodyError(w http.ResponseWriter, req *http.Request, err error) {
	w.Header().Set("Connection", "close")
	if errors.Is(err, os.ErrDeadlineExceeded) {
		fmt.Fprintf(p.stderr, "[kyb wagi] %s %s: request body not received within %v\n", req.Method, req.URL.Path, p.r.cfg.HTTP.BodyReadTimeout)
		http.Error(w, "request body not received in time", http.StatusRequestTimeout)
		return
	}
	http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
}

// writeCGIResponse parses a CGI response (headers, blank line, body) and
// writes it, as net/http/cgi's Handler does.
func writeCGIResponse(w http.ResponseWriter, out *bytes.Buffer, stderr io.Writer, req *http.Request) {
	tp := textproto.NewReader(bufio.NewReader(out))
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && !(errors.Is(err, io.EOF) && len(hdr) > 0) {
		fmt.Fprintf(stderr, "[kyb wagi] %s %s: bad CGI response headers: %v\n", req.Method, req.URL.Path, err)
		http.Error(w, "the module wrote no valid CGI headers", http.StatusBadGateway)
		return
	}
	status := http.StatusOK
	if s := hdr.Get("Status"); s != "" {
		code, _, _ := strings.Cut(s, " ")
		n, err := strconv.Atoi(code)
		if err != nil || n < 100 || n > 999 {
			fmt.Fprintf(stderr, "[kyb wagi] %s %s: bad Status header %q\n", req.Method, req.URL.Path, s)
			http.Error(w, "the module wrote a bad Status header", http.StatusBadGateway)
			return
		}
		status = n
	} else if hdr.Get("Location") != "" {
		status = http.StatusFound
	}
	hdr.Del("Status")
	h := w.Header()
	for k, vs := range hdr {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	w.WriteHeader(status)
	io.Copy(w, tp.R)
}
