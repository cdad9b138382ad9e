package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// CookieName is the session cookie.
const CookieName = "kyb_session"

// maxLoginBytes bounds a login form: a .creds file is about 1 KiB.
const maxLoginBytes = 64 << 10

// session is one signed-in user: a NATS connection with the user's
// credentials, through which every request for the user goes.
type session struct {
	id, csrf string
	user     string
	// namespace is the one the user chose at login ("" for all).
	namespace string
	nc        *nats.Conn
	c         *client.Client
	created   time.Time
	expires   time.Time // the credential's expiry or created+MaxAge
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	streams  int // live views and log tails open
	lastSeen time.Time
	canI     map[api.AuthzRequest]canIEntry
}

type canIEntry struct {
	allowed bool
	at      time.Time
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.nc.Close()
	})
}

type sessions struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	m    map[string]*session
	stop chan struct{}
	once sync.Once
}

// reapInterval is how often sessions past their time are ended (their
// live views then end too): every 30 s, or a quarter of the shorter
// session limit when that is less.
func reapInterval(cfg Config) time.Duration {
	return max(10*time.Millisecond, min(30*time.Second, cfg.IdleTimeout/4, cfg.MaxAge/4))
}

func newSessions(cfg Config, log *slog.Logger) *sessions {
	ss := &sessions{cfg: cfg, log: log, m: map[string]*session{}, stop: make(chan struct{})}
	go ss.reap()
	return ss
}

// stale reports whether s is past its time: unused for IdleTimeout, past
// MaxAge or its credential's expiry, or its connection closed.
func (ss *sessions) stale(s *session, now time.Time) bool {
	s.mu.Lock()
	idle := now.Sub(s.lastSeen) > ss.cfg.IdleTimeout
	s.mu.Unlock()
	return idle || now.After(s.expires) || s.nc.IsClosed()
}

func (ss *sessions) reap() {
	t := time.NewTicker(reapInterval(ss.cfg))
	defer t.Stop()
	for {
		select {
		case <-ss.stop:
			return
		case now := <-t.C:
			ss.mu.Lock()
			var old []*session
			for id, s := range ss.m {
				if ss.stale(s, now) {
					delete(ss.m, id)
					old = append(old, s)
				}
			}
			ss.mu.Unlock()
			for _, s := range old {
				s.close()
			}
		}
	}
}

// touch marks s used now (an open live view is use).
func (s *session) touch() {
	s.mu.Lock()
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

// get returns the live session of id, or nil; it ends an expired one.
func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	s := ss.m[id]
	ss.mu.Unlock()
	if s == nil {
		return nil
	}
	select {
	case <-s.done:
		ss.remove(s)
		return nil
	default:
	}
	if ss.stale(s, time.Now()) {
		ss.remove(s)
		return nil
	}
	s.touch()
	return s
}

func (ss *sessions) remove(s *session) {
	ss.mu.Lock()
	if ss.m[s.id] == s {
		delete(ss.m, s.id)
	}
	ss.mu.Unlock()
	s.close()
}

func (ss *sessions) closeAll() {
	ss.once.Do(func() { close(ss.stop) })
	ss.mu.Lock()
	all := ss.m
	ss.m = map[string]*session{}
	ss.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// add registers s, first ending sessions that are idle or expired; it
// fails when MaxSessions are still open.
func (ss *sessions) add(s *session) error {
	now := time.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.cfg.MaxSessions {
		for id, o := range ss.m {
			if ss.stale(o, now) {
				delete(ss.m, id)
				o.close()
			}
		}
	}
	if len(ss.m) >= ss.cfg.MaxSessions {
		return api.NewUnavailable("too many dashboard sessions are open (%d); try again later", ss.cfg.MaxSessions)
	}
	ss.m[s.id] = s
	return nil
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("dashboard: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// openSession connects to the control plane with the credentials in creds
// (the text of a .creds file) and checks that the API answers the user.
func (s *Server) openSession(ctx context.Context, creds []byte, namespace string) (*session, error) {
	opt, err := client.CredsOption(creds)
	if err != nil {
		return nil, api.NewBadRequest("creds: not a NATS .creds file (the text `kyb user create` writes): %v", err)
	}
	tok, _ := jwt.ParseDecoratedJWT(creds)
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return nil, api.NewBadRequest("creds: the JWT is not a NATS user JWT: %v", err)
	}
	name := uc.Name
	if name == "" || len(name) > 253 || strings.ContainsAny(name, " \t\r\n*>.") {
		return nil, api.NewBadRequest("creds: the user name %q in the JWT is not a kyb user name", truncate(name, 64))
	}
	sess := &session{id: randomToken(), csrf: randomToken(), user: name, namespace: namespace,
		created: time.Now(), done: make(chan struct{}), canI: map[api.AuthzRequest]canIEntry{}}
	sess.lastSeen = sess.created
	sess.expires = sess.created.Add(s.cfg.MaxAge)
	if uc.Expires > 0 {
		if exp := time.Unix(uc.Expires, 0); exp.Before(sess.expires) {
			sess.expires = exp
		}
	}
	// The NATS server checks the JWT's signature and the seed's signature
	// of its nonce: nothing here can make the connection anyone else.
	nc, err := s.cfg.Connect(opt, nats.CustomInboxPrefix(api.InboxPrefix(name)), nats.Name("kyb dashboard: "+name),
		nats.Timeout(5*time.Second), nats.ClosedHandler(func(*nats.Conn) { sess.close() }),
		// A revoked or expired credential ends the session at once (the
		// connection would otherwise try to reconnect for a while).
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthorization) {
				s.log.Info("dashboard session ended by the server", "user", name, "err", err)
				sess.close()
			}
		}))
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization") {
			return nil, api.NewUnauthorized("the control plane refused these credentials (%v)", err)
		}
		return nil, api.NewUnavailable("connect to the control plane: %v", err)
	}
	sess.nc = nc
	sess.c = client.New(nc, client.WithTimeout(s.cfg.RequestTimeout))
	// The API must answer this identity (a node's credentials may not
	// call it): ask it one harmless question.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := sess.c.CanI(cctx, api.AuthzRequest{Verb: "list", Kind: "pods", Namespace: defaultNS(namespace)}); err != nil {
		nc.Close()
		return nil, api.NewUnauthorized("the API does not answer these credentials as a user (%v)", err)
	}
	return sess, nil
}

func defaultNS(ns string) string {
	if ns == "" {
		return api.DefaultNamespace
	}
	return ns
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// withSession runs h with the request's session; without one a page
// redirects to the login and anything else answers 401.
func (s *Server) withSession(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var sess *session
		if c, err := r.Cookie(CookieName); err == nil && len(c.Value) < 100 {
			sess = s.sessions.get(c.Value)
		}
		if sess == nil {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/live/") && !strings.HasPrefix(r.URL.Path, "/logs/") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			writeStatus(w, api.NewUnauthorized("no dashboard session: sign in at /login"))
			return
		}
		if r.Method == http.MethodPost {
			if err := checkPost(r, sess); err != nil {
				writeStatus(w, err)
				return
			}
		}
		h(w, r, sess)
	}
}

// sameOrigin refuses a POST whose Origin (or, without one, Referer) is not
// this server: a cross-site form cannot act for the user.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			return &api.Status{Code: 403, Reason: api.ReasonForbidden, Message: "cross-site request refused (Sec-Fetch-Site: " + truncate(site, 32) + ")"}
		}
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return &api.Status{Code: 403, Reason: api.ReasonForbidden, Message: "cross-origin request refused (Origin " + truncate(o, 100) + " is not " + r.Host + ")"}
	}
	return nil
}

// checkPost checks a POST's origin and CSRF token (form field csrf).
func checkPost(r *http.Request, sess *session) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxLoginBytes)
	if err := r.ParseForm(); err != nil {
		return api.NewBadRequest("form: %v", err)
	}
	tok := r.PostForm.Get("csrf")
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(sess.csrf)) != 1 {
		return &api.Status{Code: 403, Reason: api.ReasonForbidden, Message: "csrf: missing or wrong token (reload the page)"}
	}
	return nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, http.StatusOK, "", r.URL.Query().Get("next"))
}

func (s *Server) renderLogin(w http.ResponseWriter, code int, msg, next string) {
	if !safeNext(next) {
		next = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, code, "login", map[string]any{"Error": msg, "Next": next})
}

// safeNext accepts only a local path as the page to go to after login.
func safeNext(next string) bool {
	return strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") && len(next) < 2048
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeStatus(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBytes)
	var creds []byte
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(maxLoginBytes); err != nil {
			s.renderLogin(w, http.StatusBadRequest, "form: "+err.Error(), "")
			return
		}
		if f, _, err := r.FormFile("credsfile"); err == nil {
			creds, _ = io.ReadAll(io.LimitReader(f, maxLoginBytes))
			f.Close()
		}
	} else if err := r.ParseForm(); err != nil {
		s.renderLogin(w, http.StatusBadRequest, "form: "+err.Error(), "")
		return
	}
	if strings.TrimSpace(string(creds)) == "" {
		creds = []byte(r.PostFormValue("creds"))
	}
	next := r.PostFormValue("next")
	if strings.TrimSpace(string(creds)) == "" {
		s.renderLogin(w, http.StatusBadRequest, "creds: required (paste the .creds file `kyb user create` wrote, or choose it)", next)
		return
	}
	ns := strings.TrimSpace(r.PostFormValue("namespace"))
	if ns != "" {
		if errs := api.ValidateName(api.KindOf(&api.Namespace{}), ns); len(errs) > 0 {
			s.renderLogin(w, http.StatusBadRequest, "namespace: "+strings.Join(errs, "; "), next)
			return
		}
	}
	sess, err := s.openSession(r.Context(), creds, ns)
	if err == nil {
		err = s.sessions.add(sess)
		if err != nil {
			sess.close()
		}
	}
	if err != nil {
		code := http.StatusUnauthorized
		var st *api.Status
		if errors.As(err, &st) {
			code = st.Code
		}
		s.log.Info("dashboard login refused", "remote", r.RemoteAddr, "err", err)
		s.renderLogin(w, code, err.Error(), next)
		return
	}
	s.log.Info("dashboard login", "user", sess.user, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.TLS != nil, MaxAge: int(s.cfg.MaxAge / time.Second)})
	if !safeNext(next) {
		next = "/"
	}
	if ns != "" && next == "/" {
		next = "/?ns=" + url.QueryEscape(ns)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	s.sessions.remove(sess)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.TLS != nil, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// openStream counts one more stream of the session, or refuses it (429)
// when MaxStreams are open; call the returned function when it ends.
func (s *Server) openStream(sess *session) (func(), error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.streams >= s.cfg.MaxStreams {
		return nil, &api.Status{Code: http.StatusTooManyRequests, Reason: "TooManyRequests",
			Message: fmt.Sprintf("this session has %d live views open already; close some tabs", sess.streams)}
	}
	sess.streams++
	return func() {
		sess.mu.Lock()
		sess.streams--
		sess.mu.Unlock()
	}, nil
}

// canI asks the API whether the session's user may do verb on kind in
// namespace, remembering answers for 10 seconds; an error counts as no.
func (s *Server) canI(ctx context.Context, sess *session, verb, kind, namespace string) bool {
	req := api.AuthzRequest{Verb: verb, Kind: kind, Namespace: namespace}
	sess.mu.Lock()
	e, ok := sess.canI[req]
	sess.mu.Unlock()
	if ok && time.Since(e.at) < 10*time.Second {
		return e.allowed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	r, err := sess.c.CanI(ctx, req)
	allowed := err == nil && r.Allowed
	sess.mu.Lock()
	if len(sess.canI) > 1000 {
		clear(sess.canI)
	}
	sess.canI[req] = canIEntry{allowed: allowed, at: time.Now()}
	sess.mu.Unlock()
	return allowed
}
