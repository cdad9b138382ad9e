package inproc

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
)

// idleProc runs until it is stopped.
type idleProc struct {
	done chan struct{}
	once sync.Once
}

func (p *idleProc) Done() <-chan struct{} { return p.done }
func (p *idleProc) Result() Exit          { return Exit{Code: runtimes.ExitCodeKilled} }
func (p *idleProc) Term()                 { p.Kill() }
func (p *idleProc) Kill()                 { p.once.Do(func() { close(p.done) }) }

func newEngine(t *testing.T, stateDir string) *Engine {
	t.Helper()
	e, err := New(Config{StateDir: stateDir, Start: func(context.Context, *Container) (Proc, error) {
		return &idleProc{done: make(chan struct{})}, nil
	}})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"3f2a9c0e1b7d4a6f8e5c2b1a0d9f8e7c", true},
		{"uid-web", true},
		{"0b7d3c1e-5f2a-4c8e-9d41-2a6f0e9b7c55", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../../victim", false},
		{"a/b", false},
		{`a\b`, false},
		{"a\x00", false},
		{strings.Repeat("a", MaxIDLen), true},
		{strings.Repeat("a", MaxIDLen+1), false},
	} {
		err := CheckID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckID(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadID) {
			t.Errorf("CheckID(%q) = %v, want it to wrap ErrBadID", tc.id, err)
		}
	}
}

// A state file whose record holds an ID with a path must not make the
// engine remove (or write) a file outside its state directory.
func TestTamperedStateFile(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"sandboxes", "containers"} {
		t.Run(kind, func(t *testing.T) {
			tmp := t.TempDir()
			stateDir := filepath.Join(tmp, "state")
			victim := filepath.Join(tmp, "victim.json")
			if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := filepath.Join(stateDir, kind, "../../victim.json"); got != victim {
				t.Fatalf("layout: %s, want %s", got, victim)
			}
			var rec any
			switch kind {
			case "sandboxes":
				rec = sandbox{Sandbox: runtimes.Sandbox{ID: "../../victim", Name: "evil", State: runtimes.SandboxReady}}
			default:
				rec = persistContainer{Status: runtimes.ContainerStatus{ID: "../../victim", Name: "evil", State: runtimes.ContainerExited}}
			}
			b, _ := json.Marshal(rec)
			if err := os.MkdirAll(filepath.Join(stateDir, kind), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(stateDir, kind, "evil.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}

			e := newEngine(t, stateDir)
			sbs, _ := e.ListSandboxes(ctx)
			cs, _ := e.ListContainers(ctx, "")
			if len(sbs)+len(cs) != 0 {
				t.Errorf("the tampered record was loaded: %d sandboxes, %d containers", len(sbs), len(cs))
			}
			_ = e.RemoveSandbox(ctx, "../../victim")
			_ = e.RemoveContainer(ctx, "../../victim")
			if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
				t.Errorf("victim file = %q, %v; want it untouched", b, err)
			}
		})
	}
}

func TestBadConfigsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, t.TempDir())
	sb, err := e.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "web", UID: "0b7d3c1e-5f2a-4c8e-9d41-2a6f0e9b7c55"})
	if err != nil {
		t.Fatalf("create sandbox: %v", err)
	}
	logPath := filepath.Join(t.TempDir(), "c.log")
	if _, err := e.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: "x", LogPath: logPath,
		Mounts: []runtimes.Mount{{HostPath: t.TempDir(), ContainerPath: "/data"}}}); err != nil {
		t.Fatalf("create container: %v", err)
	}

	for name, cfg := range map[string]*runtimes.SandboxConfig{
		"uid with a path":      {Namespace: "default", Name: "web", UID: "../../../victim"},
		"name with a slash":    {Namespace: "default", Name: "a/b"},
		"namespace dot-dot":    {Namespace: "..", Name: "web"},
		"name with a NUL":      {Name: "web\x00"},
		"name longer than 128": {Name: strings.Repeat("a", 129)},
	} {
		t.Run("sandbox "+name, func(t *testing.T) {
			_, err := e.CreateSandbox(ctx, cfg)
			if !errors.Is(err, ErrBadID) || runtimes.ReasonOf(err, "") != runtimes.ReasonInvalidConfig {
				t.Errorf("create sandbox = %v, want %s wrapping ErrBadID", err, runtimes.ReasonInvalidConfig)
			}
		})
	}
	for name, cfg := range map[string]*runtimes.ContainerConfig{
		"name with a path":      {Name: "../../x", LogPath: logPath},
		"relative log path":     {Name: "c", LogPath: "c.log"},
		"log path with ..":      {Name: "c", LogPath: "/var/lib/kyb/../../etc/cron.d/x"},
		"mount host path ..":    {Name: "c", Mounts: []runtimes.Mount{{HostPath: "/data/../etc", ContainerPath: "/x"}}},
		"mount host relative":   {Name: "c", Mounts: []runtimes.Mount{{HostPath: "data", ContainerPath: "/x"}}},
		"mount container NUL":   {Name: "c", Mounts: []runtimes.Mount{{HostPath: "/data", ContainerPath: "/x\x00"}}},
		"mount container empty": {Name: "c", Mounts: []runtimes.Mount{{HostPath: "/data"}}},
	} {
		t.Run("container "+name, func(t *testing.T) {
			cfg.Image = "x"
			_, err := e.CreateContainer(ctx, sb.ID, cfg)
			if err == nil || runtimes.ReasonOf(err, "") != runtimes.ReasonInvalidConfig {
				t.Errorf("create container = %v, want %s", err, runtimes.ReasonInvalidConfig)
			}
		})
	}
	cs, _ := e.ListContainers(ctx, sb.ID)
	if len(cs) != 1 {
		t.Errorf("%d containers, want only the valid one", len(cs))
	}
}

// RemoveContainer must read the container's state under the engine's lock:
// the goroutine that records a container's end writes it at the same time
// (go test -race reported this read before it took the lock).
func TestRemoveWhileExitingRace(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, "")
	sb, err := e.CreateSandbox(ctx, &runtimes.SandboxConfig{Name: "p", Namespace: "default", UID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	ids := make([]string, n)
	procs := make([]Proc, n)
	for i := range n {
		if ids[i], err = e.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: "img"}); err != nil {
			t.Fatal(err)
		}
		if err := e.StartContainer(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
		if _, procs[i], err = e.Running(ids[i]); err != nil || procs[i] == nil {
			t.Fatalf("container %d: running = %v, %v", i, procs[i], err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(2)
		go func() { defer wg.Done(); procs[i].Kill() }() // it ends by itself while it is removed
		go func() {
			defer wg.Done()
			if err := e.RemoveContainer(ctx, ids[i]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("remove: %v", err)
	}
	if cs, _ := e.ListContainers(ctx, ""); len(cs) != 0 {
		t.Errorf("%d containers left after removing them all", len(cs))
	}
}
