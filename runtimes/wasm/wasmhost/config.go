package wasmhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// HostConfig is what a host runs with: the wasm runtime's configuration
// but its module store (which is the agent's, reached over the socket).
// The agent writes it to Dir/host-config.json; the host reads it there.
type HostConfig struct {
	// Dir holds the socket, the pid, lock, log and config files. Required.
	Dir string
	// StateDir and CacheDir are the wasm runtime's (wasm.Config).
	StateDir, CacheDir      string
	ModuleDirs              []string
	MaxModuleBytes          int64
	DefaultMemoryLimitBytes int64
	InsecureRegistries      []string
	HTTP                    wasm.HTTPConfig
}

// The files of a host under HostConfig.Dir.
const (
	SocketName = "host.sock"
	PIDName    = "host.pid"
	LockName   = "host.lock"
	LogName    = "host.log"
	ConfigName = "host-config.json"
)

// wasmConfig is the wasm runtime's configuration of c, with modules as its
// module store.
func (c *HostConfig) wasmConfig(modules wasm.ModuleStore) wasm.Config {
	return wasm.Config{
		StateDir: c.StateDir, CacheDir: c.CacheDir, Modules: modules,
		LostMessage:             "the wasm host process ended while the container ran in it",
		ModuleDirs:              c.ModuleDirs,
		MaxModuleBytes:          c.MaxModuleBytes,
		DefaultMemoryLimitBytes: c.DefaultMemoryLimitBytes,
		InsecureRegistries:      c.InsecureRegistries,
		HTTP:                    c.HTTP,
	}
}

// Hash identifies c: a host whose hash differs from the agent's runs with
// another configuration.
func (c *HostConfig) Hash() string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// write stores c in c.Dir.
func (c *HostConfig) write() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode wasm host config: %w", err)
	}
	tmp, err := os.CreateTemp(c.Dir, ConfigName+".tmp*") // mode 0600
	if err != nil {
		return fmt.Errorf("write wasm host config: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.Dir, ConfigName))
	}
	if err != nil {
		return fmt.Errorf("write wasm host config: %w", err)
	}
	return nil
}

// ReadConfig reads the HostConfig an agent wrote in dir.
func ReadConfig(dir string) (*HostConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigName))
	if err != nil {
		return nil, fmt.Errorf("read wasm host config: %w", err)
	}
	var c HostConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode wasm host config %s: %w", filepath.Join(dir, ConfigName), err)
	}
	if c.Dir == "" {
		c.Dir = dir
	}
	if filepath.Clean(c.Dir) != filepath.Clean(dir) {
		return nil, fmt.Errorf("wasm host config %s: its Dir %q is not the directory it is in", filepath.Join(dir, ConfigName), c.Dir)
	}
	return &c, nil
}

// DefaultWaitPoll is how long one Wait call of the agent lasts at most
// before it asks again.
const DefaultWaitPoll = 30 * time.Second
