package auth

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// Files of the PKI directory that only servers hold.
const (
	// serverTokenFile holds the secret of the server join token.
	serverTokenFile = "server-token"
	// routeSecretFile holds the password every server's routes present.
	routeSecretFile = "route-secret"
	// RouteUser is the user name of the routes between servers.
	RouteUser = "kyb-route"
)

// Limits of a PKI bundle handed to a joining server.
const (
	maxBundleFiles = 64
	maxBundleBytes = 1 << 20
)

// serverOnly are PKI files that are this server's own and never shipped:
// its certificate (a joining server issues its own with the shared CA key)
// and the local cache of revocations (revocations travel in the auth bucket).
var serverOnly = map[string]bool{
	serverCertFile: true, serverKeyFile: true,
	revocationsFile: true, revocationsFile + ".tmp": true,
}

var bundleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// loadOrCreateSecret returns the secret kept in file name under dir,
// making a random one (16 characters of [a-z0-9]) on first use.
func loadOrCreateSecret(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 16 {
			return "", fmt.Errorf("%s: secret too short", path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	s := randomString(16)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

// ServerToken returns the cluster's server join token,
// KYB1<CA hash>::server.<secret>: whoever holds it can join a control plane
// server and receive every key of the cluster, so it is shown only to the
// operator (`kyb server` prints where it is kept). The secret is kept in
// the PKI directory, not in JetStream, so a first server answers a join
// before its JetStream has a quorum.
func (a *Authority) ServerToken() string {
	return api.JoinToken{CAHash: a.CAHash(), ID: api.ServerTokenID, Secret: a.serverSecret[:16]}.String()
}

// ServerTokenPath is the file holding the server join token's secret.
func (a *Authority) ServerTokenPath() string { return filepath.Join(a.dir, serverTokenFile) }

// checkServerSecret reports whether secret is the server token's.
func (a *Authority) checkServerSecret(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(secret), []byte(a.serverSecret[:16])) == 1
}

// RouteCredentials returns the user and password every server's routes
// present to the others (no route is anonymous; they also need a
// certificate of the cluster CA).
func (a *Authority) RouteCredentials() (user, password string) { return RouteUser, a.routeSecret }

// RouteTLS returns the TLS configuration of routes: both ends present a
// certificate of the cluster CA and verify the other's.
func (a *Authority) RouteTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(a.pki.ca)
	return &tls.Config{
		Certificates: []tls.Certificate{a.pki.server},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// PKIBundle returns every file of the PKI directory a joining server needs:
// the CA and its key, the operator and account keys, the server token and
// route secrets and any other key kept there (a secrets encryption key),
// but not this server's own certificate. It is sent only to a holder of the
// server token, over TLS pinned to the CA.
func (a *Authority) PKIBundle() (map[string][]byte, error) {
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, fmt.Errorf("read pki dir: %w", err)
	}
	out := map[string][]byte{}
	total := 0
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || serverOnly[n] || !bundleNameRE.MatchString(n) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.dir, n))
		if err != nil {
			return nil, fmt.Errorf("read pki file %s: %w", n, err)
		}
		total += len(b)
		if len(out) >= maxBundleFiles || total > maxBundleBytes {
			return nil, fmt.Errorf("pki dir %s: more than %d files or %d bytes", a.dir, maxBundleFiles, maxBundleBytes)
		}
		out[n] = b
	}
	return out, nil
}

// InstallPKI writes a PKI bundle received by a joining server into dir
// (mode 0600). It refuses a dir that already holds a CA (the server already
// belongs to a cluster) and any name that is not a plain file name, or one
// that is a server's own certificate.
func InstallPKI(dir string, files map[string][]byte, caHash string) error {
	if _, err := os.Stat(filepath.Join(dir, CACertFile)); err == nil {
		return fmt.Errorf("install cluster keys: %s already holds a CA (this server already belongs to a cluster)", dir)
	}
	if len(files) > maxBundleFiles {
		return fmt.Errorf("install cluster keys: %d files, at most %d", len(files), maxBundleFiles)
	}
	ca, ok := files[CACertFile]
	if !ok {
		return errors.New("install cluster keys: the bundle has no CA certificate")
	}
	cert, err := parseCert(ca)
	if err != nil {
		return fmt.Errorf("install cluster keys: CA: %w", err)
	}
	if CAHash(cert) != caHash {
		return errors.New("install cluster keys: the bundle's CA is not the one the token pins")
	}
	for _, k := range []string{caKeyFile, keysFile, serverTokenFile, routeSecretFile} {
		if _, ok := files[k]; !ok {
			return fmt.Errorf("install cluster keys: the bundle has no %s", k)
		}
	}
	for n := range files {
		if !bundleNameRE.MatchString(n) || serverOnly[n] {
			return fmt.Errorf("install cluster keys: refused file name %q", n)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("install cluster keys: %w", err)
	}
	// The CA last, so an interrupted install is retried (no CA yet).
	for n, b := range files {
		if n == CACertFile {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			return fmt.Errorf("install cluster keys: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, CACertFile), ca, 0o644); err != nil {
		return fmt.Errorf("install cluster keys: %w", err)
	}
	return nil
}

// joinServer answers a server's join: only a connection holding the server
// token gets the cluster's keys (a node token is refused, so keys never go
// to agents).
func (s *Service) joinServer(req micro.Request, tokenID string) (any, error) {
	if tokenID != api.ServerTokenID {
		return nil, api.NewForbidden("join token %s is a node join token: a server joins only with the server token (kept in %s on a server)", tokenID, serverTokenFile)
	}
	var in api.ServerJoinRequest
	if err := decode(req, &in, "ServerJoinRequest"); err != nil {
		return nil, err
	}
	if !in.Server {
		return nil, api.NewBadRequest("server: the server token joins control plane servers only (set server: true)")
	}
	if err := ValidName(in.Name); err != nil {
		return nil, api.NewBadRequest("name: %v", err)
	}
	if len(in.ClusterURL) > 256 {
		return nil, api.NewBadRequest("clusterURL: at most 256 characters")
	}
	files, err := s.a.PKIBundle()
	if err != nil {
		return nil, err
	}
	clients, routes := s.servers()
	s.log.Info("server joined", "server", in.Name, "cluster", in.ClusterURL)
	return api.ServerJoinReply{PKI: files, ClientURLs: clients, Routes: routes}, nil
}

// SystemUser returns an in-memory user of the system account, for the
// control plane's own cluster operations (pinging servers, removing a
// JetStream peer). It is never written down.
func (a *Authority) SystemUser() (InternalUser, error) {
	tok, kp, err := a.internalUser(AccountSystem, "kyb-control-plane-system")
	if err != nil {
		return InternalUser{}, fmt.Errorf("system user: %w", err)
	}
	return InternalUser{JWT: tok, Key: kp}, nil
}

// ReadServerToken returns the server join token of the cluster whose PKI
// directory is dir (the CA and the server token's secret kept there).
func ReadServerToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return "", fmt.Errorf("read server token: %w", err)
	}
	ca, err := parseCert(b)
	if err != nil {
		return "", fmt.Errorf("read server token: CA: %w", err)
	}
	secret, err := os.ReadFile(filepath.Join(dir, serverTokenFile))
	if err != nil {
		return "", fmt.Errorf("read server token: %w", err)
	}
	s := strings.TrimSpace(string(secret))
	if len(s) < 16 {
		return "", fmt.Errorf("read server token: %s: secret too short", filepath.Join(dir, serverTokenFile))
	}
	return api.JoinToken{CAHash: CAHash(ca), ID: api.ServerTokenID, Secret: s[:16]}.String(), nil
}
