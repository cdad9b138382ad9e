package controlplane_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestNatsCLIWithCreds drives the control plane with the real nats CLI, as
// an operator (and an attacker) would: --creds with the admin credentials
// reaches the API, nothing reaches JetStream, and without credentials
// nothing connects at all.
func TestNatsCLIWithCreds(t *testing.T) {
	nats := testutil.NatsCLI(t)
	cp := startCP(t, "on")
	dir := t.TempDir()
	creds, ca := filepath.Join(dir, "admin.creds"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(creds, adminCreds(t, cp), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, cp.Authority().CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(nats, append([]string{"--server", cp.ClientURL(), "--timeout", "2s"}, args...)...)
		cmd.Env = append(os.Environ(), "NATS_CONTEXT=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The API answers with credentials.
	out, err := run("--creds", creds, "--tlsca", ca, "req", "kyb.api.v1.get", `{"kind":"namespace","name":"default"}`)
	if err != nil || !strings.Contains(out, `"name":"default"`) {
		t.Fatalf("nats req get with --creds: %v\n%s", err, out)
	}
	out, err = run("--creds", creds, "--tlsca", ca, "micro", "info", "kyb")
	if err != nil || !strings.Contains(out, "kybernetes API") {
		t.Fatalf("nats micro info kyb: %v\n%s", err, out)
	}
	// JetStream is out of reach, even for the admin: the stream survives.
	for _, args := range [][]string{
		{"stream", "rm", "-f", "KV_kyb-objects"},
		{"kv", "put", "kyb-objects", "pod.default.evil", "{}"},
		{"stream", "ls"},
	} {
		out, err := run(append([]string{"--creds", creds, "--tlsca", ca}, args...)...)
		if err == nil {
			t.Errorf("nats %s with admin creds succeeded:\n%s", strings.Join(args, " "), out)
		}
	}
	if out, err := run("--creds", creds, "--tlsca", ca, "req", "kyb.api.v1.get", `{"kind":"namespace","name":"default"}`); err != nil {
		t.Fatalf("the cluster answers after the attempts: %v\n%s", err, out)
	}
	// No credentials: refused at connect.
	out, err = run("--tlsca", ca, "req", "kyb.api.v1.get", `{"kind":"namespace","name":"default"}`)
	if err == nil || !strings.Contains(strings.ToLower(out), "authorization violation") {
		t.Fatalf("anonymous nats req: want an authorization violation, got %v\n%s", err, out)
	}
}
