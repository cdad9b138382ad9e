package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// kyb create secret/configmap against a real apiserver: the values are in
// the object (-o yaml/json show them), never in `get` or `describe`.
func TestCreateSecretAndConfigMap(t *testing.T) {
	url := startCluster(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id_rsa")
	if err := os.WriteFile(keyFile, []byte("PRIVATE-KEY-BYTES"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "blob.bin")
	if err := os.WriteFile(bin, []byte{0xff, 0xfe, 0x00}, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := kybOut(url, args...)
		if err != nil {
			t.Fatalf("kyb %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	if out := run("create", "secret", "generic", "db", "--from-literal", "password=hunter2-value", "--from-file", "ssh="+keyFile, "--from-file", keyFile); out != "secret/db created\n" {
		t.Fatalf("create secret: %q", out)
	}
	run("create", "secret", "docker-registry", "reg", "--docker-server", "registry.example:5000", "--docker-username", "u", "--docker-password", "registry-pw")
	run("create", "configmap", "app", "--from-literal", "mode=fast", "--from-file", bin)

	table := run("get", "secrets")
	if !regexp.MustCompile(`(?m)^NAME +TYPE +DATA +AGE\ndb +Opaque +3 +\S+\nreg +kubernetes.io/dockerconfigjson +1 +\S+$`).MatchString(table) {
		t.Errorf("get secrets:\n%s", table)
	}
	desc := run("describe", "secret", "db")
	for _, want := range []string{"Type:", "Opaque", "password:", "13 bytes", "id_rsa:", "17 bytes"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe secret lacks %q:\n%s", want, desc)
		}
	}
	for _, out := range []string{table, desc, run("get", "secret", "db", "-o", "wide"), run("get", "secret", "db", "-o", "name")} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "aHVudGVy") || strings.Contains(out, "PRIVATE") {
			t.Errorf("a value was printed:\n%s", out)
		}
	}
	// -o json shows them (base64, as Kubernetes).
	var s struct {
		Data map[string][]byte
		Type string
	}
	if err := json.Unmarshal([]byte(run("get", "secret", "db", "-o", "json")), &s); err != nil || string(s.Data["password"]) != "hunter2-value" || string(s.Data["ssh"]) != "PRIVATE-KEY-BYTES" {
		t.Errorf("-o json: %+v %v", s, err)
	}
	if err := json.Unmarshal([]byte(run("get", "secret", "reg", "-o", "json")), &s); err != nil || !strings.Contains(string(s.Data[".dockerconfigjson"]), `"registry.example:5000":{"username":"u","password":"registry-pw","auth":"dTpyZWdpc3RyeS1wdw=="}`) {
		t.Errorf("docker-registry: %s %v", s.Data[".dockerconfigjson"], err)
	}
	if cm := run("get", "configmap", "app"); !regexp.MustCompile(`(?m)^NAME +DATA +AGE\napp +2 `).MatchString(cm) {
		t.Errorf("get configmap:\n%s", cm)
	}
	if y := run("get", "cm", "app", "-o", "yaml"); !strings.Contains(y, "mode: fast") || !strings.Contains(y, "blob.bin: //4A") {
		t.Errorf("configmap yaml (binary file in binaryData):\n%s", y)
	}
	// Dry run prints and creates nothing.
	y := run("create", "configmap", "dry", "--from-literal", "a=b", "--dry-run=client", "-o", "yaml")
	if !strings.Contains(y, "kind: ConfigMap") || !strings.Contains(y, "a: b") {
		t.Errorf("dry run:\n%s", y)
	}
	if _, _, err := kybOut(url, "get", "cm", "dry"); err == nil {
		t.Errorf("a dry run created the ConfigMap")
	}
	// Bad input.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "secret", "generic", "db", "--from-literal", "a=b"}, "already exists"},
		{[]string{"create", "secret", "generic", "x", "--from-literal", "novalue"}, "want KEY=VALUE"},
		{[]string{"create", "secret", "generic", "x", "--from-literal", "a/b=c"}, `key "a/b"`},
		{[]string{"create", "secret", "generic", "x", "--from-literal", "a=1", "--from-literal", "a=2"}, "given twice"},
		{[]string{"create", "secret", "generic", "x", "--from-file", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"create", "secret", "generic", "Bad_Name"}, "RFC 1123 subdomain"},
		{[]string{"create", "secret", "generic", "t", "--type", "kubernetes.io/tls", "--from-literal", "tls.crt=x"}, "data[tls.key]: required"},
		{[]string{"create", "secret", "docker-registry", "r2", "--docker-username", "u"}, "--docker-password"},
		{[]string{"create", "configmap", "big", "--from-literal", "k=" + strings.Repeat("x", 1<<20)}, `ConfigMap "big" has 1048577 bytes of keys and values; must have at most 1048576 bytes`},
		{[]string{"create", "secret", "generic", "big", "--from-literal", "k=" + strings.Repeat("x", 1<<20)}, `Secret "big" has 1048577 bytes`},
	} {
		_, errOut, err := kybOut(url, tc.args...)
		if err == nil {
			t.Errorf("kyb %.80s: no error", strings.Join(tc.args, " "))
			continue
		}
		if tc.want != "" && !strings.Contains(err.Error()+errOut, tc.want) {
			t.Errorf("kyb %.80s: %v %s, want %q", strings.Join(tc.args, " "), err, errOut, tc.want)
		}
	}
}
