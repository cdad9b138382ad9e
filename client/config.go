package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"sigs.k8s.io/yaml"
)

// Config is a kyb client configuration file (like a kubeconfig): where the
// control plane is and how to prove who you are. `kyb up` and `kyb server`
// write one for the admin; `kyb user create` writes one for a new user.
type Config struct {
	// Server is the NATS URL of the control plane.
	Server string `json:"server"`
	// Servers are the URLs of the other servers of a clustered control
	// plane: a client connects to any of them (and moves to another when
	// its server goes away).
	Servers []string `json:"servers,omitempty"`
	// Creds is the path of a NATS .creds file (relative to the config file).
	Creds string `json:"creds,omitempty"`
	// CA is the path of the cluster CA certificate (relative to the config
	// file); empty for a plain-TCP loopback server.
	CA string `json:"ca,omitempty"`
	// InboxPrefix is the reply inbox prefix the credentials may use
	// (_INBOX_<user> for every user but the admin).
	InboxPrefix string `json:"inboxPrefix,omitempty"`

	dir string // the file's directory, for relative paths
}

// EnvConfig names the environment variable of the config file's path.
const EnvConfig = "KYB_CONFIG"

// ConfigPath returns the config file to use: flag when set, else
// $KYB_CONFIG, else ~/.kyb/config.
func ConfigPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return p
	}
	return DefaultConfigPath()
}

// DefaultConfigPath is ~/.kyb/config.
func DefaultConfigPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), ".kyb", "config")
	}
	return filepath.Join(home, ".kyb", "config")
}

// LoadConfig reads the config file at path. A missing file is an error
// wrapping os.ErrNotExist.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kyb config: %w", err)
	}
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("kyb config %s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	return &c, nil
}

// WriteConfig writes c to path (mode 0600), with a header comment.
func WriteConfig(path, header string, c Config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode kyb config: %w", err)
	}
	if header != "" {
		b = append([]byte("# "+strings.ReplaceAll(header, "\n", "\n# ")+"\n"), b...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write kyb config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write kyb config: %w", err)
	}
	return nil
}

func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// URL is the comma-separated list of every server's URL (Server first),
// as nats.Connect takes it.
func (c *Config) URL() string {
	urls := []string{}
	for _, u := range append([]string{c.Server}, c.Servers...) {
		if u != "" && !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	return strings.Join(urls, ",")
}

// Options are the nats.go options that connect with c's credentials, CA
// and inbox prefix.
func (c *Config) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.Creds != "" {
		b, err := os.ReadFile(c.path(c.Creds))
		if err != nil {
			return nil, fmt.Errorf("kyb config: credentials: %w", err)
		}
		o, err := CredsOption(b)
		if err != nil {
			return nil, fmt.Errorf("kyb config: credentials %s: %w", c.path(c.Creds), err)
		}
		opts = append(opts, o)
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.path(c.CA))
		if err != nil {
			return nil, fmt.Errorf("kyb config: CA: %w", err)
		}
		o, err := TLSOption(pem)
		if err != nil {
			return nil, fmt.Errorf("kyb config: CA %s: %w", c.path(c.CA), err)
		}
		opts = append(opts, o)
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	return opts, nil
}

// CredsOption authenticates with the text of a NATS .creds file (a user
// JWT and the NKey seed that signs the server's nonce).
func CredsOption(creds []byte) (nats.Option, error) {
	tok, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return nil, err
	}
	kp, err := jwt.ParseDecoratedUserNKey(creds)
	if err != nil {
		return nil, err
	}
	if tok == "" || kp == nil {
		return nil, errors.New("not a .creds file (no JWT or no seed)")
	}
	return nats.UserJWT(
		func() (string, error) { return tok, nil },
		func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) },
	), nil
}

// TLSOption trusts only the CA certificates in pem, and uses TLS whenever
// the server offers it (and refuses a server with a certificate of any
// other CA).
func TLSOption(pem []byte) (nats.Option, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return func(o *nats.Options) error {
		o.TLSConfig = cfg
		return nil
	}, nil
}
