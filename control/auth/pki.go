package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names under the PKI directory.
const (
	CACertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// pki is the cluster CA and the server certificate it signed.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caPEM  []byte
	caKey  *ecdsa.PrivateKey
	server tls.Certificate
}

// loadOrCreatePKI reads the CA under dir, making one when there is none,
// and (re)issues the server certificate when it does not cover hosts or
// expires within 30 days.
func loadOrCreatePKI(dir string, hosts []string) (*pki, error) {
	p := &pki{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki dir: %w", err)
	}
	if err := p.loadOrCreateCA(); err != nil {
		return nil, err
	}
	if err := p.loadOrIssueServer(hosts); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) loadOrCreateCA() error {
	certPath, keyPath := filepath.Join(p.dir, CACertFile), filepath.Join(p.dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generate CA key: %w", err)
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: "kybernetes-ca@" + fmt.Sprint(now.Unix())},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.AddDate(10, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return fmt.Errorf("create CA certificate: %w", err)
		}
		if err := writeKey(keyPath, key); err != nil {
			return err
		}
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
			return fmt.Errorf("write CA certificate: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read CA certificate: %w", err)
	}
	ca, err := parseCert(certPEM)
	if err != nil {
		return fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	p.ca, p.caPEM, p.caKey = ca, certPEM, key
	return nil
}

func (p *pki) loadOrIssueServer(hosts []string) error {
	certPath, keyPath := filepath.Join(p.dir, serverCertFile), filepath.Join(p.dir, serverKeyFile)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err == nil && covers(leaf, hosts) && time.Until(leaf.NotAfter) > 30*24*time.Hour &&
			slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
			leaf.CheckSignatureFrom(p.ca) == nil {
			p.server = c
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kyb-server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Client auth too: a server's routes present it to the others.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	// The chain includes the CA, so that a joining agent can check it
	// against the hash its token pins before it trusts anything else.
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), p.caPEM...)
	if err := os.WriteFile(certPath, chain, 0o644); err != nil {
		return fmt.Errorf("write server certificate: %w", err)
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("load server certificate: %w", err)
	}
	p.server = c
	return nil
}

// covers reports whether cert names every host (IP or DNS name).
func covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if h != "" && !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

// CAHash returns the hex SHA-256 of a certificate's DER bytes, the value a
// join token pins.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM key")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}
