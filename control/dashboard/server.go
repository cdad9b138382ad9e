package dashboard

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a dashboard.
type Config struct {
	// Connect opens a NATS connection to the control plane with opts (the
	// user's credentials and inbox prefix are among them). Required.
	Connect func(opts ...nats.Option) (*nats.Conn, error)
	// TLS, when set, makes Serve speak HTTPS and the session cookie Secure.
	TLS *tls.Config
	// IdleTimeout ends a session unused this long; default 30 minutes.
	IdleTimeout time.Duration
	// MaxAge ends a session this long after its login; default 12 hours.
	MaxAge time.Duration
	// MaxSessions bounds the sessions open at once (each holds a NATS
	// connection); a login beyond it is refused (503). Default 1000.
	MaxSessions int
	// MaxStreams bounds the live views and log tails one session has open
	// at once (each holds watches on the user's connection); one more is
	// refused with 429. Default 16.
	MaxStreams int
	// Debounce is how long a live view gathers changes before it renders
	// again; default 20ms.
	Debounce time.Duration
	// RequestTimeout bounds each API request made for a page or action;
	// default 10s.
	RequestTimeout time.Duration
}

// Server is a dashboard. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tmpl     *template.Template
	mux      *http.ServeMux
	sessions *sessions

	mu   sync.Mutex
	http *http.Server
}

// New returns a dashboard; Handler serves it, Serve runs it on a listener.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Connect == nil {
		return nil, errors.New("dashboard: Config.Connect is required")
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1000
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 16
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 20 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: parse templates: %w", err)
	}
	s := &Server{cfg: cfg, log: log, tmpl: tmpl, mux: http.NewServeMux()}
	s.sessions = newSessions(cfg, log)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.withSession(s.logout))
	for _, v := range views {
		s.mux.HandleFunc("GET "+v.pattern, s.withSession(s.page(v)))
		s.mux.HandleFunc("GET /live"+v.pattern, s.withSession(s.live(v)))
	}
	s.mux.HandleFunc("GET /logs/{namespace}/{name}", s.withSession(s.logs))
	s.mux.HandleFunc("GET /usage", s.withSession(s.usage))
	s.mux.HandleFunc("POST /actions/delete", s.withSession(s.actionDelete))
	s.mux.HandleFunc("POST /actions/scale", s.withSession(s.actionScale))
	s.mux.HandleFunc("POST /actions/restart", s.withSession(s.actionRestart))
}

// Handler returns the dashboard's HTTP handler.
func (s *Server) Handler() http.Handler { return securityHeaders(s.mux) }

// Serve serves the dashboard on ln (HTTPS when Config.TLS is set) until
// ctx ends or Close is called; then it returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if s.cfg.TLS != nil {
		hs.TLSConfig = s.cfg.TLS.Clone()
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	s.mu.Lock()
	s.http = hs
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: serve: %w", err)
	}
	return nil
}

// Close stops serving, ends every session and closes their connections.
func (s *Server) Close() error {
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	var err error
	if hs != nil {
		err = hs.Close()
	}
	s.sessions.closeAll()
	return err
}

// securityHeaders sets the headers every response carries: a strict
// content security policy (no inline script, nothing from elsewhere), no
// framing, no sniffing, no referrer beyond this server.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin") // no-referrer would make the browser send "Origin: null" on our own forms
		h.ServeHTTP(w, r)
	})
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}
