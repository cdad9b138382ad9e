package controlplane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/store"
)

// grepDir fails when any file under dir holds one of needles.
func grepDir(t *testing.T, dir string, needles ...[]byte) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds the secret's plaintext %q", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func keyNames(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pki", store.EncryptionConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Resources []struct {
			Providers []struct {
				AESGCM struct {
					Keys []struct{ Name string }
				}
			}
		}
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range cfg.Resources[0].Providers[0].AESGCM.Keys {
		out = append(out, k.Name)
	}
	return out
}

// The plaintext of a Secret (raw and base64, as JSON would hold it) is in
// no file under the data dir, JetStream's included, after the server
// stops; the same after a key rotation, which leaves one (new) key that
// still reads the Secret. The key file is 0600.
func TestSecretsEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 12)
	_, _ = rand.Read(raw)
	plain := "pw-" + hex.EncodeToString(raw)
	fromString := "str-" + hex.EncodeToString(raw)
	needles := [][]byte{[]byte(plain), []byte(base64.StdEncoding.EncodeToString([]byte(plain))), []byte(fromString),
		[]byte(base64.StdEncoding.EncodeToString([]byte(fromString)))}
	ctx := context.Background()
	run := func(rotate bool, apply bool) {
		t.Helper()
		cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: dir, Listen: "127.0.0.1:0", TLS: "off", Sync: "always", RotateSecretsKey: rotate},
			slog.New(slog.NewTextHandler(testWriter(t), nil)))
		if err != nil {
			t.Fatalf("start control plane: %v", err)
		}
		nc, err := connectAs(t, cp, adminCreds(t, cp))
		if err != nil {
			t.Fatal(err)
		}
		admin := client.New(nc, client.WithTimeout(10*time.Second))
		if apply {
			m := "apiVersion: v1\nkind: Secret\nmetadata: {name: db, labels: {app: db}}\ndata:\n  password: " +
				base64.StdEncoding.EncodeToString([]byte(plain)) + "\nstringData:\n  other: " + fromString + "\n"
			if _, err := admin.Apply(ctx, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		obj, err := admin.Get(ctx, "Secret", "default", "db")
		if err != nil {
			t.Fatal(err)
		}
		s := obj.(*api.Secret)
		if string(s.Data["password"]) != plain || string(s.Data["other"]) != fromString || s.StringData != nil {
			t.Fatalf("read back %+v", s)
		}
		nc.Close()
		if err := cp.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	run(false, true)
	if n := grepDir(t, dir, needles...); n < 5 {
		t.Fatalf("walked only %d files", n)
	}
	if got := keyNames(t, dir); len(got) != 1 || got[0] != "key1" {
		t.Fatalf("keys %q, want [key1]", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "pki", store.EncryptionConfigFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	run(true, false)
	grepDir(t, dir, needles...)
	if got := keyNames(t, dir); len(got) != 1 || got[0] != "key2" {
		t.Fatalf("keys after rotation %q, want [key2] (key1 retired)", got)
	}
	// The retired key is gone: the Secret reads back with key2 only.
	run(false, false)
}
