package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Account names of the embedded NATS server.
const (
	AccountControl   = "KYB"
	AccountUsers     = "USERS"
	AccountNodes     = "NODES"
	AccountBootstrap = "BOOTSTRAP"
	AccountSystem    = "SYS"
)

// Principal name prefixes and tags.
const (
	// NodePrefix starts the user name of a node: system:node:<name>.
	NodePrefix = "system:node:"
	// BootstrapPrefix starts the user name of a token holder: system:bootstrap:<token id>.
	BootstrapPrefix = "system:bootstrap:"
	// AdminUser is the user of the admin credentials written on first start.
	AdminUser = "admin"

	tagNode = "kyb:node"
	tagUser = "kyb:user"
	// tagAnyInbox lets a user subscribe to every _INBOX.> reply subject (the
	// nats CLI's default inbox). Only the admin credentials carry it: other
	// users get only _INBOX_<name>.>, so no one reads another's replies.
	tagAnyInbox = "kyb:any-inbox"
)

const issuerFile = "issuer.nk"

// Authority holds the cluster's CA, server certificate and credential issuer.
// It is safe for concurrent use.
type Authority struct {
	pki    *pki
	issuer nkeys.KeyPair
	pub    string
}

// LoadOrCreate reads the authority kept in dir, making whatever is missing:
// a CA, a server certificate naming hosts (IPs or DNS names), an issuer key.
func LoadOrCreate(dir string, hosts []string) (*Authority, error) {
	p, err := loadOrCreatePKI(dir, hosts)
	if err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	kp, err := loadOrCreateIssuer(filepath.Join(dir, issuerFile))
	if err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	pub, _ := kp.PublicKey()
	return &Authority{pki: p, issuer: kp, pub: pub}, nil
}

func loadOrCreateIssuer(path string) (nkeys.KeyPair, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateAccount()
		if err != nil {
			return nil, fmt.Errorf("create issuer key: %w", err)
		}
		seed, _ = kp.Seed()
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			return nil, fmt.Errorf("write issuer key: %w", err)
		}
		return kp, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read issuer key: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return nil, fmt.Errorf("issuer key %s: %w", path, err)
	}
	return kp, nil
}

// IssuerPublicKey is the public key of the credential issuer.
func (a *Authority) IssuerPublicKey() string { return a.pub }

// CAPEM returns the CA certificate, PEM-encoded.
func (a *Authority) CAPEM() []byte { return a.pki.caPEM }

// CAPath is where the CA certificate is kept.
func (a *Authority) CAPath() string { return filepath.Join(a.pki.dir, CACertFile) }

// CAHash is the hex SHA-256 of the CA certificate, pinned by join tokens.
func (a *Authority) CAHash() string { return CAHash(a.pki.ca) }

// ServerTLS returns the TLS configuration the NATS server listens with.
func (a *Authority) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{a.pki.server}, MinVersion: tls.VersionTLS12}
}

// ClientTLS returns a TLS configuration that trusts only the cluster CA.
func (a *Authority) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(a.pki.ca)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidName checks a user or node name: a DNS-1123 label (it becomes part
// of subjects, so no dots, wildcards or spaces), at most 63 characters.
func ValidName(name string) error {
	if len(name) > 63 || !nameRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
	}
	return nil
}

// UserCreds issues credentials for user name: a new key pair and a JWT,
// returned as the text of a .creds file.
func (a *Authority) UserCreds(name string) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create user key: %w", err)
	}
	pub, _ := kp.PublicKey()
	tok, err := a.IssueUser(name, pub)
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	return jwt.FormatUserConfig(tok, seed)
}

// AdminCreds issues the admin credentials (user AdminUser, any inbox).
func (a *Authority) AdminCreds() ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create admin key: %w", err)
	}
	pub, _ := kp.PublicKey()
	tok, err := a.issue(AdminUser, pub, tagUser, tagAnyInbox)
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	return jwt.FormatUserConfig(tok, seed)
}

// IssueUser signs a JWT for user name holding the NKey public key pub.
func (a *Authority) IssueUser(name, pub string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("issue user credentials: %w", err)
	}
	return a.issue(name, pub, tagUser)
}

// IssueNode signs a JWT for node name holding the NKey public key pub.
func (a *Authority) IssueNode(name, pub string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("issue node credentials: %w", err)
	}
	return a.issue(NodePrefix+name, pub, tagNode)
}

func (a *Authority) issue(name, pub string, tags ...string) (string, error) {
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("issue credentials for %s: %q is not an NKey user public key", name, pub)
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.IssuedAt = time.Now().Unix()
	uc.Tags.Add(tags...)
	tok, err := uc.Encode(a.issuer)
	if err != nil {
		return "", fmt.Errorf("sign credentials for %s: %w", name, err)
	}
	return tok, nil
}
