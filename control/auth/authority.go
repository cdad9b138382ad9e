package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
)

// Account names. The NATS server knows each account by its public key; the
// names are the accounts' JWT names and the keys of Authority.Account.
const (
	AccountControl   = "KYB"
	AccountUsers     = "USERS"
	AccountNodes     = "NODES"
	AccountBootstrap = "BOOTSTRAP"
	AccountAuth      = "AUTH"
	AccountSystem    = "SYS"
)

var accountNames = []string{AccountSystem, AccountControl, AccountUsers, AccountNodes, AccountBootstrap, AccountAuth}

// Principal name prefixes and tags.
const (
	// NodePrefix starts the user name of a node: system:node:<name>.
	NodePrefix = "system:node:"
	// BootstrapPrefix starts the user name of a token holder: system:bootstrap:<token id>.
	BootstrapPrefix = "system:bootstrap:"
	// AdminUser is the user of the admin credentials written on first start.
	AdminUser = "admin"
	// GroupTagPrefix starts a tag that puts a user in a group: group:<name>.
	GroupTagPrefix = "group:"

	tagNode = "kyb:node"
	tagUser = "kyb:user"
)

const (
	keysFile        = "nkeys.json"
	revocationsFile = "revocations.json"
)

// Authority holds the cluster's CA and server certificate and the NATS
// operator and account keys that sign every credential. It is safe for
// concurrent use.
type Authority struct {
	pki      *pki
	operator nkeys.KeyPair
	accounts map[string]nkeys.KeyPair // by name
	pubs     map[string]string        // name -> public key

	serverSecret string // the server join token's secret
	routeSecret  string // the routes' password

	mu          sync.Mutex
	dir         string
	revocations map[string]jwt.RevocationList // by account name
}

// LoadOrCreate reads the authority kept in dir, making whatever is missing:
// a CA, a server certificate naming hosts (IPs or DNS names), the operator
// and account keys.
func LoadOrCreate(dir string, hosts []string) (*Authority, error) {
	p, err := loadOrCreatePKI(dir, hosts)
	if err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	a := &Authority{pki: p, dir: dir, accounts: map[string]nkeys.KeyPair{}, pubs: map[string]string{}}
	if err := a.loadOrCreateKeys(); err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	if err := a.loadRevocations(); err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	if a.serverSecret, err = loadOrCreateSecret(dir, serverTokenFile); err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	if a.routeSecret, err = loadOrCreateSecret(dir, routeSecretFile); err != nil {
		return nil, fmt.Errorf("load cluster authority in %s: %w", dir, err)
	}
	return a, nil
}

func (a *Authority) loadOrCreateKeys() error {
	path := filepath.Join(a.dir, keysFile)
	seeds := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &seeds); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read keys: %w", err)
	}
	changed := false
	get := func(name string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
		if s, ok := seeds[name]; ok {
			return nkeys.FromSeed([]byte(s))
		}
		kp, err := create()
		if err != nil {
			return nil, err
		}
		seed, _ := kp.Seed()
		seeds[name] = string(seed)
		changed = true
		return kp, nil
	}
	if a.operator, err = get("operator", nkeys.CreateOperator); err != nil {
		return fmt.Errorf("operator key: %w", err)
	}
	for _, n := range accountNames {
		kp, err := get(n, nkeys.CreateAccount)
		if err != nil {
			return fmt.Errorf("account %s key: %w", n, err)
		}
		a.accounts[n] = kp
		a.pubs[n], _ = kp.PublicKey()
	}
	if changed {
		b, _ := json.MarshalIndent(seeds, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("write keys: %w", err)
		}
	}
	return nil
}

func (a *Authority) loadRevocations() error {
	a.revocations = map[string]jwt.RevocationList{}
	b, err := os.ReadFile(filepath.Join(a.dir, revocationsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}
	return json.Unmarshal(b, &a.revocations)
}

// Account returns the public key of account name ("" for an unknown name).
func (a *Authority) Account(name string) string { return a.pubs[name] }

// AccountName returns the name of the account with public key pub, or "".
func (a *Authority) AccountName(pub string) string {
	for n, p := range a.pubs {
		if p == pub {
			return n
		}
	}
	return ""
}

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

// ValidName checks a user, group or node name: a DNS-1123 label (it becomes
// part of subjects, so no dots, wildcards or spaces), at most 63 characters.
func ValidName(name string) error {
	if len(name) > 63 || !nameRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
	}
	return nil
}

// InboxPrefix is the reply inbox prefix of a user or node (api.InboxPrefix).
func InboxPrefix(name string) string { return api.InboxPrefix(name) }

// UserPermissions are what a user may publish and subscribe to: only the
// API (the users' account imports nothing else) and their own inbox; the
// admin also the plain _INBOX.> the nats CLI uses.
func UserPermissions(name string) jwt.Permissions {
	sub := jwt.StringList{InboxPrefix(name) + ".>"}
	if name == AdminUser {
		sub = append(sub, "_INBOX.>")
	}
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{"kyb.api.v1.>", "$SRV.>"}},
		Sub: jwt.Permission{Allow: sub},
	}
}

// NodePermissions are what node name may publish and subscribe to.
func NodePermissions(name string) jwt.Permissions {
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{
			"kyb.node." + name + ".>",
			"kyb.logs." + name + ".>",
		}},
		Sub: jwt.Permission{Allow: jwt.StringList{
			"kyb.agent." + name + ".>",
			InboxPrefix(name) + ".>",
		}},
	}
}

// UserCreds issues credentials for user name in groups: a new key pair and
// a JWT, returned as the text of a .creds file.
func (a *Authority) UserCreds(name string, groups ...string) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create user key: %w", err)
	}
	pub, _ := kp.PublicKey()
	tok, err := a.IssueUser(name, pub, groups...)
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	return jwt.FormatUserConfig(tok, seed)
}

// AdminCreds issues credentials of the admin user.
func (a *Authority) AdminCreds() ([]byte, error) { return a.UserCreds(AdminUser) }

// IssueUser signs a JWT for user name in groups, holding the NKey public
// key pub.
func (a *Authority) IssueUser(name, pub string, groups ...string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("issue user credentials: %w", err)
	}
	tags := []string{tagUser}
	for _, g := range groups {
		if err := ValidName(g); err != nil {
			return "", fmt.Errorf("issue user credentials: group: %w", err)
		}
		tags = append(tags, GroupTagPrefix+g)
	}
	return a.issue(AccountUsers, name, pub, UserPermissions(name), tags...)
}

// IssueNode signs a JWT for node name holding the NKey public key pub.
func (a *Authority) IssueNode(name, pub string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("issue node credentials: %w", err)
	}
	return a.issue(AccountNodes, NodePrefix+name, pub, NodePermissions(name), tagNode)
}

func (a *Authority) issue(account, name, pub string, perms jwt.Permissions, tags ...string) (string, error) {
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("issue credentials for %s: %q is not an NKey user public key", name, pub)
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Permissions = perms
	uc.Tags.Add(tags...)
	tok, err := uc.Encode(a.accounts[account])
	if err != nil {
		return "", fmt.Errorf("sign credentials for %s: %w", name, err)
	}
	return tok, nil
}

// internalUser makes an in-memory user of account (the control plane's own
// connections): its JWT and key pair, never written down.
func (a *Authority) internalUser(account, name string) (string, nkeys.KeyPair, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", nil, err
	}
	pub, _ := kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	tok, err := uc.Encode(a.accounts[account])
	if err != nil {
		return "", nil, err
	}
	return tok, kp, nil
}

// revoke merges list into account's revocations (a later time wins) and
// keeps them in revocations.json, so they are in force from the first
// instant of a restart. It reports whether anything changed.
func (a *Authority) revoke(account string, list jwt.RevocationList) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rl := a.revocations[account]
	if rl == nil {
		rl = jwt.RevocationList{}
		a.revocations[account] = rl
	}
	changed := false
	for p, at := range list {
		if rl[p] < at {
			rl[p] = at
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	b, _ := json.MarshalIndent(a.revocations, "", "  ")
	tmp := filepath.Join(a.dir, revocationsFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return false, fmt.Errorf("write revocations: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(a.dir, revocationsFile)); err != nil {
		return false, fmt.Errorf("write revocations: %w", err)
	}
	return true, nil
}

func (a *Authority) revocationsOf(account string) jwt.RevocationList {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := jwt.RevocationList{}
	for k, v := range a.revocations[account] {
		out[k] = v
	}
	return out
}
