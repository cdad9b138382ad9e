package auth

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

func TestParseJoinToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		tok string
		ok  bool
	}{
		{"KYB1" + hash + "::abc123.0123456789abcdef", true},
		{" KYB1" + hash + "::abc123.0123456789abcdef\n", true},
		{"KYB1" + hash + "::abc123.0123456789abcde", false},      // short secret
		{"KYB1" + hash[2:] + "::abc123.0123456789abcdef", false}, // short hash
		{"KYB1" + hash + "::ABC123.0123456789abcdef", false},     // upper case id
		{"K10" + hash + "::abc123.0123456789abcdef", false},
		{"", false},
		{strings.Repeat("K", 5000), false},
	} {
		p, err := api.ParseJoinToken(tc.tok)
		if (err == nil) != tc.ok {
			t.Errorf("ParseJoinToken(%.30q): %v, want ok=%v", tc.tok, err, tc.ok)
		}
		if err == nil && p.String() != strings.TrimSpace(tc.tok) {
			t.Errorf("String() = %q", p.String())
		}
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"n1": true, "node-a": true, "a": true, strings.Repeat("a", 63): true,
		"": false, "A": false, "a.b": false, "a*": false, "a>": false, "-a": false, "a b": false,
		strings.Repeat("a", 64): false, "system:node:x": false,
	} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%.20q) = %v, want ok=%v", name, err, ok)
		}
	}
}

// TestLoadOrCreateKeepsKeysAndReissuesServerCert: a restart keeps the CA
// and every key (so credentials stay valid); a new listen name gets a new
// server certificate from the same CA.
func TestLoadOrCreateKeepsKeysAndReissuesServerCert(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir, []string{"127.0.0.1", "kyb.example"})
	if err != nil {
		t.Fatal(err)
	}
	if a.CAHash() != b.CAHash() || a.Account(AccountUsers) != b.Account(AccountUsers) {
		t.Fatal("the CA or an account key changed across a restart")
	}
	leaf, err := x509.ParseCertificate(b.pki.server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("kyb.example"); err != nil {
		t.Errorf("server certificate after a new name: %v", err)
	}
	if err := leaf.CheckSignatureFrom(b.pki.ca); err != nil {
		t.Errorf("server certificate not signed by the CA: %v", err)
	}
	for _, f := range []string{caKeyFile, keysFile, serverKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, st.Mode().Perm())
		}
	}
}

func TestIdentify(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	info := func(acc, user, tag string, tags ...string) string {
		b, _ := json.Marshal(natsserver.ClientInfo{Account: acc, User: user, NameTag: tag, Tags: tags})
		return string(b)
	}
	users := a.Account(AccountUsers)
	for _, tc := range []struct {
		name    string
		h       nats.Header
		want    Identity
		wantErr bool
	}{
		{"control plane", nats.Header{}, Identity{Name: ControlPlaneName, ControlPlane: true}, false},
		{"user", nats.Header{natsserver.ClientInfoHdr: {info(users, "UPUB", "alice", "kyb:user", "group:ops")}},
			Identity{Account: AccountUsers, Name: "alice", Groups: []string{"ops"}}, false},
		{"bootstrap", nats.Header{natsserver.ClientInfoHdr: {info(a.Account(AccountBootstrap), "system:bootstrap:abc123", "sentinel")}},
			Identity{Account: AccountBootstrap, Name: "system:bootstrap:abc123"}, false},
		{"forged second header", nats.Header{natsserver.ClientInfoHdr: {info(users, "U", "admin"), info(users, "U", "bob")}}, Identity{}, true},
		{"empty header", nats.Header{natsserver.ClientInfoHdr: {""}}, Identity{}, true},
		{"unknown account", nats.Header{natsserver.ClientInfoHdr: {info("AXYZ", "U", "admin")}}, Identity{}, true},
		{"garbage", nats.Header{natsserver.ClientInfoHdr: {"{"}}, Identity{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Identify(tc.h)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (got.Account != tc.want.Account || got.Name != tc.want.Name || got.ControlPlane != tc.want.ControlPlane ||
				strings.Join(got.Groups, ",") != strings.Join(tc.want.Groups, ",")) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
