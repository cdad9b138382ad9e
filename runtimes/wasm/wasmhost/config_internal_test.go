package wasmhost

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// TestConfigHashSurvivesTheFile: the host hashes the config it read from
// the file the agent wrote; the agent hashes what it wrote. They must be
// equal, or every agent restart would see "another configuration".
func TestConfigHashSurvivesTheFile(t *testing.T) {
	for _, c := range []HostConfig{
		{Dir: t.TempDir(), StateDir: "/s"},
		{Dir: t.TempDir(), StateDir: "/s", CacheDir: "/c", ModuleDirs: []string{}, InsecureRegistries: []string{"r:5000"},
			MaxModuleBytes: 1, DefaultMemoryLimitBytes: -1, HTTP: wasm.HTTPConfig{DefaultHostIP: "127.0.0.1", RequestTimeout: time.Second, MaxBodyBytes: 3}},
	} {
		if err := c.write(); err != nil {
			t.Fatal(err)
		}
		got, err := ReadConfig(c.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash() != c.Hash() {
			t.Errorf("hash %s after the file, %s before: %+v vs %+v", got.Hash(), c.Hash(), got, c)
		}
		other := c
		other.StateDir = "/elsewhere"
		if other.Hash() == c.Hash() {
			t.Errorf("two configs, one hash")
		}
	}
}

// TestConfigsKeepPointersToZero: runAsUser: 0 and fsGroup: 0 are not "unset"
// after crossing the socket (gob alone would drop them).
func TestConfigsKeepPointersToZero(t *testing.T) {
	zero := int64(0)
	want := runtimes.ContainerConfig{Name: "c", Security: runtimes.Security{RunAsUser: &zero, RunAsGroup: &zero},
		Mounts: []runtimes.Mount{{HostPath: "/h", ContainerPath: "/c", EmptyDir: &runtimes.EmptyDir{GID: &zero}}}}
	b, err := json.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(CreateContainerArgs{SandboxID: "s", Config: b}); err != nil {
		t.Fatal(err)
	}
	var args CreateContainerArgs
	if err := gob.NewDecoder(&buf).Decode(&args); err != nil {
		t.Fatal(err)
	}
	var got runtimes.ContainerConfig
	if err := json.Unmarshal(args.Config, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config after the socket: %+v, want %+v", got, want)
	}
}
