package controlplane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/auth"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
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

// A node reads a Secret or ConfigMap only when a pod bound to it (in the
// object's namespace) references it: another node's secret, a secret no
// pod references and one of another namespace are 403; a forged node name
// in the subject is a permissions violation; a 4 KB name is a 400.
func TestNodeReadsOnlyItsPodsSecrets(t *testing.T) {
	cp := startCP(t, "on")
	ctx := context.Background()
	nc, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(nc, client.WithTimeout(10*time.Second))
	for _, m := range []string{
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s1}\nstringData: {k: one}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s2}\nstringData: {k: two}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: lonely}\nstringData: {k: three}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s1, namespace: other}\nstringData: {k: four}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: five}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: i, env: [{name: A, valueFrom: {secretKeyRef: {name: s1, key: k}}}]}]\n  volumes: [{name: v, projected: {sources: [{configMap: {name: cm}}]}}]\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p2}\nspec:\n  nodeName: n2\n  containers: [{name: c, image: i}]\n  volumes: [{name: v, secret: {secretName: s2}}]\n",
	} {
		if _, err := admin.Apply(ctx, []byte(m)); err != nil {
			t.Fatalf("apply %q: %v", m, err)
		}
	}
	errOpt, errs := permErrs(t)
	n1, err := connectAs(t, cp, join(t, cp, "n1"), errOpt, nats.CustomInboxPrefix(auth.InboxPrefix("n1")))
	if err != nil {
		t.Fatal(err)
	}
	node := client.New(n1, client.WithTimeout(5*time.Second))
	ask := func(kind, ns, name string) (api.Object, error) {
		b, _ := json.Marshal(api.ConfigRequest{Kind: kind, Namespace: ns, Name: name})
		out, err := node.Request(ctx, api.NodeSubject("n1", api.NodeVerbConfig), b)
		if err != nil {
			return nil, err
		}
		ds, err := api.Decode(out)
		if err != nil {
			return nil, err
		}
		return ds[0].Object, nil
	}
	// The cache follows the store's watch: wait for the pods.
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := ask("Secret", "default", "s1")
		return err
	})
	obj, err := ask("Secret", "default", "s1")
	if err != nil || string(obj.(*api.Secret).Data["k"]) != "one" {
		t.Fatalf("own pod's secret: %v, %v", obj, err)
	}
	if obj, err := ask("ConfigMap", "default", "cm"); err != nil || obj.(*api.ConfigMap).Data["k"] != "five" {
		t.Fatalf("own pod's configmap (projected): %v, %v", obj, err)
	}
	for _, tc := range []struct{ kind, ns, name string }{
		{"Secret", "default", "s2"},     // another node's pod's
		{"Secret", "default", "lonely"}, // nobody's
		{"Secret", "other", "s1"},       // the same name in another namespace
		{"ConfigMap", "default", "s1"},  // the right name, the wrong kind
	} {
		if _, err := ask(tc.kind, tc.ns, tc.name); !isStatus(err, 403) {
			t.Errorf("%s %s/%s: %v, want 403", tc.kind, tc.ns, tc.name, err)
		}
	}
	if _, err := ask("Secret", "default", strings.Repeat("a", 4096)); !isStatus(err, 400) {
		t.Errorf("4 KB name: %v, want 400", err)
	}
	if _, err := ask("Pod", "default", "p1"); !isStatus(err, 400) {
		t.Errorf("kind Pod: %v, want 400", err)
	}
	// A change of an object its pods use is announced to n1 (without the
	// values); one of n2's is not.
	notices, err := n1.SubscribeSync(api.AgentSubject("n1", api.AgentVerbConfig))
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s2}\nstringData: {k: two-changed}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: six}\n",
	} {
		if _, err := admin.Apply(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := notices.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no config notice: %v", err)
	}
	var notice api.ConfigNotice
	if err := json.Unmarshal(msg.Data, &notice); err != nil || notice.Kind != "ConfigMap" || notice.Name != "cm" || notice.Namespace != "default" || notice.Type != api.EventModified {
		t.Fatalf("notice %s: %v", msg.Data, err)
	}
	if strings.Contains(string(msg.Data), "six") {
		t.Fatalf("the notice carries values: %s", msg.Data)
	}
	if m, err := notices.NextMsg(50 * time.Millisecond); err == nil { // s2 came first: its notice would have been the first
		t.Fatalf("n1 was told of %s", m.Data)
	}
	// A change that leaves the values as they were (a label) is not
	// announced: the next notice is s1's.
	for _, m := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, labels: {a: b}}\ndata: {k: six}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s1}\nstringData: {k: one-changed}\n",
	} {
		if _, err := admin.Apply(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if msg, err = notices.NextMsg(5 * time.Second); err != nil || !strings.Contains(string(msg.Data), `"name":"s1"`) {
		t.Fatalf("notice after a label change: %v %v, want s1's", msg, err)
	}
	// Speaking for n2 is refused by NATS itself.
	b, _ := json.Marshal(api.ConfigRequest{Kind: "Secret", Namespace: "default", Name: "s2"})
	if err := n1.Publish(api.NodeSubject("n2", api.NodeVerbConfig), b); err != nil {
		t.Fatal(err)
	}
	wantPermViolation(t, errs, api.NodeSubject("n2", api.NodeVerbConfig))
	// And a user cannot use the node verb.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := admin.Request(short, api.NodeSubject("n1", api.NodeVerbConfig), b); err == nil {
		t.Fatal("admin on a node verb: want an error")
	}
}

func isStatus(err error, code int) bool {
	var st *api.Status
	return errors.As(err, &st) && st.Code == code
}

// Bad input through the API changes nothing: a change of an immutable
// Secret is a 422 naming the field, a Secret of more than 1 MiB a 413, a
// bad key a 422 naming it, a dockerconfigjson Secret without its key a 422.
func TestSecretBadInput(t *testing.T) {
	cp := startCP(t, "off")
	ctx := context.Background()
	nc, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(nc, client.WithTimeout(10*time.Second))
	if _, err := admin.Apply(ctx, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: fixed}\nimmutable: true\nstringData: {k: v1}\n")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, manifest string
		code           int
		want           string
	}{
		{"immutable", "apiVersion: v1\nkind: Secret\nmetadata: {name: fixed}\nimmutable: true\nstringData: {k: v2}\n", 422, "data: field is immutable"},
		{"too big", "apiVersion: v1\nkind: Secret\nmetadata: {name: big}\nstringData: {k: " + strings.Repeat("x", 1<<20) + "}\n", 413, "exceeds the limit"},
		{"bad key", "apiVersion: v1\nkind: Secret\nmetadata: {name: k}\nstringData: {'a b': v}\n", 422, "data[a b]"},
		{"docker config", "apiVersion: v1\nkind: Secret\nmetadata: {name: d}\ntype: kubernetes.io/dockerconfigjson\nstringData: {k: v}\n", 422, "data[.dockerconfigjson]: required"},
		{"configmap key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'../x': v}\n", 422, "data[../x]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.Apply(ctx, []byte(tc.manifest))
			var st *api.Status
			if !errors.As(err, &st) || st.Code != tc.code || !strings.Contains(err.Error()+fmt.Sprint(st.Causes), tc.want) {
				t.Fatalf("apply: %v (causes %v), want %d with %q", err, causesOf(st), tc.code, tc.want)
			}
		})
	}
	obj, err := admin.Get(ctx, "Secret", "default", "fixed")
	if err != nil || string(obj.(*api.Secret).Data["k"]) != "v1" {
		t.Fatalf("the immutable secret: %v %v", obj, err)
	}
	for _, name := range []string{"big", "k", "d"} {
		if _, err := admin.Get(ctx, "Secret", "default", name); !api.IsNotFound(err) {
			t.Errorf("secret %s: %v, want NotFound (nothing stored)", name, err)
		}
	}
}

func causesOf(st *api.Status) []api.StatusCause {
	if st == nil {
		return nil
	}
	return st.Causes
}
