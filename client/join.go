package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
)

// NodeCreds are what a join gives a node: its .creds file and the cluster
// CA (PEM).
type NodeCreds struct {
	Creds []byte
	CA    []byte
	// Servers are the client URLs of every control plane server.
	Servers []string
}

// Join exchanges a join token for the credentials of node name at the
// server url. The server must present a certificate chain ending in the CA
// the token pins (its hash); a server beyond loopback must use TLS, so the
// token never crosses a network in the clear. The node's key pair is made
// here and its seed never leaves this process. opts are extra connect
// options (an in-process server, for `kyb up`).
func Join(ctx context.Context, serverURL, token, name string, opts ...nats.Option) (*NodeCreds, error) {
	t, err := api.ParseJoinToken(token)
	if err != nil {
		return nil, err
	}
	nc, err := joinConn(serverURL, token, t.CAHash, name, opts...)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("join: create node key: %w", err)
	}
	pub, _ := kp.PublicKey()
	var reply api.JoinReply
	if err := New(nc).call(ctx, api.SubjectJoin, api.JoinRequest{Name: name, PublicKey: pub}, &reply); err != nil {
		return nil, fmt.Errorf("join as node %s: %w", name, err)
	}
	blk, _ := pem.Decode([]byte(reply.CA))
	if blk == nil {
		return nil, errors.New("join: the reply carries no CA certificate")
	}
	if sum := sha256.Sum256(blk.Bytes); hex.EncodeToString(sum[:]) != t.CAHash {
		return nil, errors.New("join: the server's CA is not the one the token pins")
	}
	seed, _ := kp.Seed()
	creds, err := jwt.FormatUserConfig(reply.JWT, seed)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	return &NodeCreds{Creds: creds, CA: []byte(reply.CA), Servers: reply.Servers}, nil
}

// JoinServer exchanges the cluster's server token for the cluster's keys
// and the servers' URLs: a new control plane server named name, whose
// routes listen at clusterURL, joins the cluster at serverURL. The server
// must present a certificate chain ending in the CA the token pins.
func JoinServer(ctx context.Context, serverURL, token, name, clusterURL string, opts ...nats.Option) (*api.ServerJoinReply, error) {
	t, err := api.ParseJoinToken(token)
	if err != nil {
		return nil, err
	}
	if t.ID != api.ServerTokenID {
		return nil, fmt.Errorf("join token %s is a node join token: a server joins with the server token (`cat <data-dir>/server/pki/server-token` on a server, or what `kyb server` printed)", t.ID)
	}
	nc, err := joinConn(serverURL, token, t.CAHash, "server "+name, append([]nats.Option{nats.CustomInboxPrefix(api.ServerJoinInbox)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var reply api.ServerJoinReply
	req := api.ServerJoinRequest{Server: true, Name: name, ClusterURL: clusterURL}
	if err := New(nc).call(ctx, api.SubjectJoin, req, &reply); err != nil {
		return nil, fmt.Errorf("join as server %s: %w", name, err)
	}
	return &reply, nil
}

// joinConn connects with a join token to serverURL, trusting only a server
// whose chain ends in the CA of hash caHash.
func joinConn(serverURL, token, caHash, name string, opts ...nats.Option) (*nats.Conn, error) {
	host := hostOf(serverURL)
	pin := &tls.Config{
		InsecureSkipVerify: true, // replaced by the pinned-CA check below
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, caHash, host)
		},
	}
	copts := append([]nats.Option{
		nats.Name("kyb-join " + name),
		nats.Token(token),
		func(o *nats.Options) error { o.TLSConfig = pin; return nil },
	}, opts...)
	if host != "" && !isLoopbackHost(host) {
		copts = append(copts, nats.Secure(pin))
	}
	nc, err := nats.Connect(serverURL, copts...)
	if err != nil {
		if errors.Is(err, nats.ErrSecureConnWanted) {
			return nil, fmt.Errorf("join %s: the server does not offer TLS; a join token is never sent in the clear beyond loopback", serverURL)
		}
		return nil, fmt.Errorf("join %s: %w", serverURL, err)
	}
	return nc, nil
}

// verifyPinned checks that the chain raw ends in a certificate of hash
// caHash that signed the leaf, and that the leaf names host.
func verifyPinned(raw [][]byte, caHash, host string) error {
	var ca *x509.Certificate
	for _, r := range raw {
		sum := sha256.Sum256(r)
		if hex.EncodeToString(sum[:]) == caHash {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			ca = c
		}
	}
	if ca == nil || len(raw) == 0 {
		return errors.New("the server's certificate chain does not contain the CA the join token pins")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
	return err
}

func hostOf(serverURL string) string {
	first := strings.Split(serverURL, ",")[0]
	if !strings.Contains(first, "://") {
		first = "nats://" + first
	}
	u, err := url.Parse(first)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
