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

	"github.com/tetratelabs/wazero"

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
	sem     chan struct{}

	ctx    context.Context // cancelled on Kill: ends requests in flight
	cancel context.CancelFunc

	done     chan struct{}
	termOnce sync.Once
	wg       sync.WaitGroup
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
}

// Kill stops listening and ends requests in flight.
func (p *wagiProc) Kill() {
	p.cancel()
	for _, s := range p.servers {
		s.Close()
	}
}

func (r *Runtime) serve(c *inproc.Container, m *module, logf *os.File, ports []runtimes.PortMapping) (*wagiProc, error) {
	base, closeMounts, err := moduleConfig(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &wagiProc{
		r: r, c: c, m: m, log: logf, stderr: &lockedWriter{w: logf},
		sem: make(chan struct{}, r.cfg.HTTP.MaxConcurrent),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	base = base.WithStderr(p.stderr)
	for _, kv := range staticCGIEnv {
		base = base.WithEnv(kv[0], kv[1])
	}
	var lns []net.Listener
	for _, pm := range ports {
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
			return nil, runtimes.WithReason("HostPortUnavailable", true, fmt.Errorf("listen on %s: %w", addr, err))
		}
		lns = append(lns, ln)
		srv := &http.Server{
			Handler:           p.handler(base, pm),
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		p.servers = append(p.servers, srv)
	}
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
		for range cap(p.sem) {
			p.sem <- struct{}{}
		}
		cancel()
		closeMounts()
		logf.Close()
		r.dropUsage(c.ID)
		close(p.done)
	}()
	r.log.Debug("wagi serving", "container", c.ID, "name", c.Config.Name, "ports", len(ports))
	return p, nil
}

func (p *wagiProc) handler(mc wazero.ModuleConfig, pm runtimes.PortMapping) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case p.sem <- struct{}{}:
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests in flight", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-p.sem }()
		p.serveCGI(w, req, mc, pm)
	})
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

// cgiEnv is the per-request CGI/1.1 environment of a request, as net/http/cgi builds it.
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
	// (Each variable costs a copy of wazero's module config.)
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
	if ct := req.Header.Get("Content-Type"); ct != "" {
		env = append(env, [2]string{"CONTENT_TYPE", ct})
	}
	for k, v := range req.Header {
		k = strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if k == "PROXY" || k == "CONTENT_TYPE" || k == "CONTENT_LENGTH" {
			continue // httpoxy; the two are set above
		}
		env = append(env, [2]string{"HTTP_" + k, strings.Join(v, ", ")})
	}
	return env
}

func (p *wagiProc) serveCGI(w http.ResponseWriter, req *http.Request, mc wazero.ModuleConfig, pm runtimes.PortMapping) {
	ctx, cancel := context.WithTimeout(req.Context(), p.r.cfg.HTTP.RequestTimeout)
	defer cancel()
	var body io.Reader = eofReader{}
	if req.Body != nil && req.ContentLength < 0 {
		// A chunked body: CGI needs its length, so read it first.
		b, err := io.ReadAll(io.LimitReader(req.Body, p.r.cfg.HTTP.MaxBodyBytes+1))
		if err != nil {
			http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if int64(len(b)) > p.r.cfg.HTTP.MaxBodyBytes {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		req.ContentLength = int64(len(b))
		body = bytes.NewReader(b)
	} else if req.Body != nil && req.ContentLength > 0 {
		body = req.Body
	}
	for _, kv := range cgiEnv(req, pm) {
		mc = mc.WithEnv(kv[0], kv[1])
	}
	out := &limitedBuffer{max: p.r.cfg.HTTP.MaxBodyBytes}
	mc = mc.WithStdin(body).WithStdout(out)
	x := p.r.instance(ctx, p.m, mc, p.c.Config.MemoryLimitBytes, p.r.usageOf(p.c.ID), func() bool { return p.ctx.Err() != nil })
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
