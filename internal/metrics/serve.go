package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the /metrics listener.
type Options struct {
	// Addr is host:port; "" or "off" serves nothing.
	Addr string
	// Token, when set, is a bearer token every scrape must carry
	// (Authorization: Bearer <token>; Prometheus' authorization.credentials_file).
	Token string
	// Insecure allows a non-loopback Addr without a token: anyone who
	// reaches the port reads the metrics.
	Insecure bool
}

// Handler serves Registry in the Prometheus text (or OpenMetrics) format,
// requiring the bearer token when token is not "".
func Handler(token string) http.Handler {
	h := promhttp.HandlerFor(Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kyb metrics"`)
			http.Error(w, "unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Check refuses a configuration that would expose the metrics beyond
// loopback with no protection.
func (o Options) Check() error {
	if o.Addr == "" || o.Addr == "off" {
		return nil
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("metrics listen address %q: %w", o.Addr, err)
	}
	if isLoopback(host) || o.Token != "" || o.Insecure {
		return nil
	}
	return fmt.Errorf("metrics listen address %q is beyond loopback: give a bearer token (--metrics-token-file) or accept anyone reading it (--metrics-insecure)", o.Addr)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve listens on o.Addr and serves /metrics until ctx ends. It returns the
// address it listens on (nil when o.Addr is "" or "off"), or an error when
// the configuration is refused or the address cannot be listened on.
func Serve(ctx context.Context, o Options, log *slog.Logger) (net.Addr, error) {
	if o.Addr == "" || o.Addr == "off" {
		return nil, nil
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", o.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(o.Token))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr(), nil
}
