package inproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Proc is one running container as its runtime runs it.
type Proc interface {
	// Done is closed when the container has ended.
	Done() <-chan struct{}
	// Result is how it ended; valid once Done is closed.
	Result() Exit
	// Term asks the container to end (a runtime without signals may end it
	// at once); Kill ends it now. Both return at once and may be repeated.
	Term()
	Kill()
}

// Exit is how a container ended.
type Exit struct {
	Code    int32
	Reason  string // "" means Completed for 0, Error otherwise
	Message string
}

// Container is what Start gets to run: the container's ID, config and
// resolved image, and its sandbox.
type Container struct {
	ID       string
	Config   runtimes.ContainerConfig
	ImageRef string
	Sandbox  runtimes.SandboxConfig
}

// Config configures an Engine.
type Config struct {
	// StateDir holds one JSON file per sandbox and container; "" keeps
	// state in memory only.
	StateDir string
	// Prepare checks a container config at create time and resolves its
	// image to the reference reported as ImageRef. Errors are returned
	// from CreateContainer as they are (wrap them with a ReasonError).
	Prepare func(ctx context.Context, sb *runtimes.SandboxConfig, cfg *runtimes.ContainerConfig) (imageRef string, err error)
	// Start starts a container. Required.
	Start func(ctx context.Context, c *Container) (Proc, error)
	// Log receives state changes at debug level; nil discards.
	Log *slog.Logger
	// LostMessage is the message of a container found running in the state
	// files, which ended with the process that ran it (reason
	// AgentRestarted); "the agent process ended while the container ran in
	// it" when empty.
	LostMessage string
}

type sandbox struct {
	Sandbox runtimes.Sandbox
	Config  runtimes.SandboxConfig
}

type container struct {
	Status runtimes.ContainerStatus
	Config runtimes.ContainerConfig

	proc    Proc          // set while running
	done    chan struct{} // closed when exited
	stopped bool          // the runtime ended it
}

// Engine implements every runtimes.Runtime method but Info and EnsureImage.
// It is safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	fileMu sync.Mutex // serialises state file writes
	mu     sync.Mutex
	closed bool
	sbs    map[string]*sandbox
	cs     map[string]*container
}

type persistContainer struct {
	Status runtimes.ContainerStatus `json:"status"`
	Config runtimes.ContainerConfig `json:"config"`
}

// New returns an engine, loading the state of a previous instance from
// cfg.StateDir when there is one.
func New(cfg Config) (*Engine, error) {
	if cfg.Start == nil {
		return nil, errors.New("inproc: Config.Start is required")
	}
	e := &Engine{cfg: cfg, log: cfg.Log, sbs: map[string]*sandbox{}, cs: map[string]*container{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir == "" {
		return e, nil
	}
	for _, d := range []string{"sandboxes", "containers"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	sbs, err := readDir(filepath.Join(cfg.StateDir, "sandboxes"), func(sb *sandbox) string { return sb.Sandbox.ID }, e.log)
	if err != nil {
		return nil, err
	}
	pcs, err := readDir(filepath.Join(cfg.StateDir, "containers"), func(pc *persistContainer) string { return pc.Status.ID }, e.log)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var changed []string
	for _, sb := range sbs {
		e.sbs[sb.Sandbox.ID] = sb
	}
	for _, pc := range pcs {
		c := &container{Status: pc.Status, Config: pc.Config, done: make(chan struct{})}
		if c.Status.State == runtimes.ContainerRunning {
			c.Status.State = runtimes.ContainerExited
			c.Status.ExitCode = runtimes.ExitCodeAgentRestarted
			c.Status.Reason = runtimes.ReasonAgentRestarted
			c.Status.Message = cfg.LostMessage
			if c.Status.Message == "" {
				c.Status.Message = "the agent process ended while the container ran in it"
			}
			c.Status.FinishedAt = now
			changed = append(changed, c.Status.ID)
		}
		if c.Status.State == runtimes.ContainerExited {
			close(c.done)
		}
		e.cs[c.Status.ID] = c
	}
	for _, id := range changed {
		if err := e.persistContainer(id); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// readDir decodes every JSON file of dir (a missing dir holds nothing).
// A record whose ID (as idOf reads it) is not a valid path element or not
// the name of its file is skipped: the engine would write or remove a file
// named by that ID.
func readDir[T any](dir string, idOf func(*T) string, log *slog.Logger) ([]*T, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var out []*T
	for _, en := range entries {
		if !strings.HasSuffix(en.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			return nil, fmt.Errorf("read state: %w", err)
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("read state %s: %w", filepath.Join(dir, en.Name()), err)
		}
		if id := idOf(v); CheckID(id) != nil || id+".json" != en.Name() {
			log.Warn("skipping a state file whose id is not its name or not a path element", "file", filepath.Join(dir, en.Name()), "id", clip(id))
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// The state is one small file per sandbox and per container, so that a
// change costs the same however many pods the node runs.

// persistSandbox writes (or, when it is gone, removes) the sandbox's state
// file; callers hold neither lock.
func (e *Engine) persistSandbox(id string) error {
	return e.persistObject("sandboxes", id, func() (any, bool) {
		sb, ok := e.sbs[id]
		return sb, ok
	})
}

// persistContainer writes (or removes) the container's state file.
func (e *Engine) persistContainer(id string) error {
	return e.persistObject("containers", id, func() (any, bool) {
		c, ok := e.cs[id]
		if !ok {
			return nil, false
		}
		return persistContainer{Status: c.Status, Config: c.Config}, true
	})
}

// persistObject encodes what get returns (under mu) and writes it to
// dir/id.json (New made dir), or removes that file when get finds nothing.
// Writes are serialised by fileMu, taken before the encoding, so a file
// never goes back to an older state.
func (e *Engine) persistObject(dir, id string, get func() (any, bool)) error {
	if e.cfg.StateDir == "" {
		return nil
	}
	if err := CheckID(id); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	v, ok := get()
	var b []byte
	var err error
	if ok {
		b, err = json.Marshal(v)
	}
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	path := filepath.Join(e.cfg.StateDir, dir, id+".json")
	if !ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove state: %w", err)
		}
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func (e *Engine) persistLog(id string) {
	if err := e.persistContainer(id); err != nil {
		e.log.Warn("persist runtime state", "err", err)
	}
}

// Close kills every running container without recording its end, as the
// agent process ending would, and stops writing the state file. The engine
// must not be used afterwards.
func (e *Engine) Close() {
	e.fileMu.Lock()
	e.mu.Lock()
	e.closed = true
	var procs []Proc
	for _, c := range e.cs {
		if c.proc != nil {
			procs = append(procs, c.proc)
		}
	}
	e.mu.Unlock()
	e.fileMu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, p := range procs {
		<-p.Done()
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateSandbox implements runtimes.Runtime.
func (e *Engine) CreateSandbox(ctx context.Context, cfg *runtimes.SandboxConfig) (*runtimes.Sandbox, error) {
	if cfg == nil || cfg.Name == "" {
		return nil, errors.New("create sandbox: name is required")
	}
	if err := checkSandboxConfig(cfg); err != nil {
		return nil, fmt.Errorf("create sandbox: %w", runtimes.WithReason(runtimes.ReasonInvalidConfig, false, err))
	}
	sb := &sandbox{
		Sandbox: runtimes.Sandbox{
			ID: newID(), Namespace: cfg.Namespace, Name: cfg.Name, UID: cfg.UID,
			Labels: maps.Clone(cfg.Labels), State: runtimes.SandboxReady, CreatedAt: time.Now(),
		},
		Config: *cfg,
	}
	e.mu.Lock()
	e.sbs[sb.Sandbox.ID] = sb
	out := cloneSandbox(&sb.Sandbox)
	e.mu.Unlock()
	e.log.Debug("sandbox created", "sandbox", out.ID, "pod", cfg.Namespace+"/"+cfg.Name)
	if err := e.persistSandbox(out.ID); err != nil {
		return nil, fmt.Errorf("create sandbox %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	return out, nil
}

func cloneSandbox(s *runtimes.Sandbox) *runtimes.Sandbox {
	c := *s
	c.Labels = maps.Clone(s.Labels)
	return &c
}

// RemoveSandbox implements runtimes.Runtime.
func (e *Engine) RemoveSandbox(ctx context.Context, id string) error {
	e.mu.Lock()
	_, ok := e.sbs[id]
	var ids []string
	for cid, c := range e.cs {
		if c.Status.SandboxID == id {
			ids = append(ids, cid)
		}
	}
	e.mu.Unlock()
	if !ok && len(ids) == 0 {
		return nil
	}
	for _, cid := range ids {
		if err := e.StopContainer(ctx, cid, 0); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", id, err)
		}
	}
	e.mu.Lock()
	for _, cid := range ids {
		delete(e.cs, cid)
	}
	delete(e.sbs, id)
	e.mu.Unlock()
	e.log.Debug("sandbox removed", "sandbox", id)
	for _, cid := range ids {
		if err := e.persistContainer(cid); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", id, err)
		}
	}
	if err := e.persistSandbox(id); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	return nil
}

// ListSandboxes implements runtimes.Runtime.
func (e *Engine) ListSandboxes(ctx context.Context) ([]*runtimes.Sandbox, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*runtimes.Sandbox, 0, len(e.sbs))
	for _, sb := range e.sbs {
		out = append(out, cloneSandbox(&sb.Sandbox))
	}
	slices.SortFunc(out, func(a, b *runtimes.Sandbox) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// SandboxConfig returns the config a sandbox was created with, or an error
// wrapping ErrNotFound.
func (e *Engine) SandboxConfig(id string) (*runtimes.SandboxConfig, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sb, ok := e.sbs[id]
	if !ok {
		return nil, runtimes.NotFoundf("sandbox %s", id)
	}
	c := sb.Config
	return &c, nil
}

// CreateContainer implements runtimes.Runtime.
func (e *Engine) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimes.ContainerConfig) (string, error) {
	if cfg == nil || cfg.Name == "" {
		return "", errors.New("create container: name is required")
	}
	if err := checkContainerConfig(cfg); err != nil {
		return "", fmt.Errorf("create container: %w", runtimes.WithReason(runtimes.ReasonInvalidConfig, false, err))
	}
	sbCfg, err := e.SandboxConfig(sandboxID)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", cfg.Name, err)
	}
	ref := cfg.Image
	if e.cfg.Prepare != nil {
		if ref, err = e.cfg.Prepare(ctx, sbCfg, cfg); err != nil {
			return "", fmt.Errorf("create container %s: %w", cfg.Name, err)
		}
	}
	c := &container{
		Config: cloneConfig(cfg),
		done:   make(chan struct{}),
		Status: runtimes.ContainerStatus{
			ID: newID(), SandboxID: sandboxID, Name: cfg.Name, Attempt: cfg.Attempt,
			Image: cfg.Image, ImageRef: ref, State: runtimes.ContainerCreated,
			Labels: maps.Clone(cfg.Labels), LogPath: cfg.LogPath, CreatedAt: time.Now(),
		},
	}
	e.mu.Lock()
	if _, ok := e.sbs[sandboxID]; !ok {
		e.mu.Unlock()
		return "", fmt.Errorf("create container %s: %w", cfg.Name, runtimes.NotFoundf("sandbox %s", sandboxID))
	}
	e.cs[c.Status.ID] = c
	e.mu.Unlock()
	e.log.Debug("container created", "container", c.Status.ID, "name", cfg.Name)
	if err := e.persistContainer(c.Status.ID); err != nil {
		return "", fmt.Errorf("create container %s: %w", cfg.Name, err)
	}
	return c.Status.ID, nil
}

func cloneConfig(cfg *runtimes.ContainerConfig) runtimes.ContainerConfig {
	c := *cfg
	c.Command = slices.Clone(cfg.Command)
	c.Args = slices.Clone(cfg.Args)
	c.Env = slices.Clone(cfg.Env)
	c.Mounts = slices.Clone(cfg.Mounts)
	c.Ports = slices.Clone(cfg.Ports)
	c.Labels = maps.Clone(cfg.Labels)
	return c
}

// StartContainer implements runtimes.Runtime.
func (e *Engine) StartContainer(ctx context.Context, id string) error {
	e.mu.Lock()
	c, ok := e.cs[id]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("start container: %w", runtimes.NotFoundf("container %s", id))
	}
	if c.Status.State != runtimes.ContainerCreated {
		st := c.Status.State
		e.mu.Unlock()
		return fmt.Errorf("start container %s: it is %v, not created", id, st)
	}
	sb := e.sbs[c.Status.SandboxID]
	// Mark running before Start returns so that a concurrent start fails.
	c.Status.State = runtimes.ContainerRunning
	c.Status.StartedAt = time.Now()
	run := &Container{ID: id, Config: cloneConfig(&c.Config), ImageRef: c.Status.ImageRef}
	if sb != nil {
		run.Sandbox = sb.Config
	}
	e.mu.Unlock()

	p, err := e.cfg.Start(ctx, run)
	if err != nil {
		e.finish(c, Exit{Code: runtimes.ExitCodeStartError, Reason: runtimes.ReasonOf(err, runtimes.ReasonStartError), Message: err.Error()})
		return fmt.Errorf("start container %s (%s): %w", c.Config.Name, id, err)
	}
	e.mu.Lock()
	c.proc = p
	stopped := c.stopped
	e.mu.Unlock()
	if stopped { // stopped while starting
		p.Kill()
	}
	e.log.Debug("container started", "container", id, "name", c.Config.Name)
	e.persistLog(id)
	go func() {
		<-p.Done()
		e.finish(c, p.Result())
	}()
	return nil
}

// finish records a container's end once.
func (e *Engine) finish(c *container, x Exit) {
	e.mu.Lock()
	if c.Status.State == runtimes.ContainerExited {
		e.mu.Unlock()
		return
	}
	if x.Reason == "" {
		x.Reason = runtimes.ReasonCompleted
		if x.Code != 0 {
			x.Reason = runtimes.ReasonFailed
		}
	}
	c.Status.State = runtimes.ContainerExited
	c.Status.ExitCode, c.Status.Reason, c.Status.Message = x.Code, x.Reason, x.Message
	c.Status.FinishedAt = time.Now()
	if c.Status.StartedAt.IsZero() {
		c.Status.StartedAt = c.Status.FinishedAt
	}
	c.proc = nil
	close(c.done)
	closed := e.closed
	e.mu.Unlock()
	if !closed {
		e.log.Debug("container exited", "container", c.Status.ID, "name", c.Config.Name, "code", x.Code, "reason", x.Reason)
		e.persistLog(c.Status.ID)
	}
}

// WaitContainer implements runtimes.Runtime.
func (e *Engine) WaitContainer(ctx context.Context, id string) (<-chan runtimes.ExitResult, error) {
	e.mu.Lock()
	c, ok := e.cs[id]
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("wait container: %w", runtimes.NotFoundf("container %s", id))
	}
	ch := make(chan runtimes.ExitResult, 1)
	go func() {
		select {
		case <-c.done:
			e.mu.Lock()
			st := c.Status
			e.mu.Unlock()
			ch <- runtimes.ExitResult{ExitCode: st.ExitCode, Reason: st.Reason, Message: st.Message, FinishedAt: st.FinishedAt}
		case <-ctx.Done():
			ch <- runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", id, ctx.Err())}
		}
	}()
	return ch, nil
}

// StopContainer implements runtimes.Runtime: Term, then Kill after grace.
func (e *Engine) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	e.mu.Lock()
	c, ok := e.cs[id]
	if !ok {
		e.mu.Unlock()
		return nil
	}
	c.stopped = true
	p := c.proc
	state := c.Status.State
	e.mu.Unlock()
	switch {
	case state == runtimes.ContainerExited:
		return nil
	case state == runtimes.ContainerCreated:
		e.finish(c, Exit{Code: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, Message: "stopped before it started"})
		return nil
	case p == nil:
		// Start is in progress; it kills the proc when it sees stopped.
	default:
		p.Term()
		if grace > 0 {
			t := time.NewTimer(grace)
			select {
			case <-c.done:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		p.Kill()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", id, ctx.Err())
	}
}

// RemoveContainer implements runtimes.Runtime; a running container is
// killed first.
func (e *Engine) RemoveContainer(ctx context.Context, id string) error {
	e.mu.Lock()
	c, ok := e.cs[id]
	var state runtimes.ContainerState
	if ok {
		state = c.Status.State // finish writes it under mu
	}
	e.mu.Unlock()
	if !ok {
		return nil
	}
	if state != runtimes.ContainerExited {
		if err := e.StopContainer(ctx, id, 0); err != nil {
			return fmt.Errorf("remove container: %w", err)
		}
	}
	e.mu.Lock()
	delete(e.cs, id)
	e.mu.Unlock()
	if err := e.persistContainer(id); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// ContainerStatus implements runtimes.Runtime.
func (e *Engine) ContainerStatus(ctx context.Context, id string) (*runtimes.ContainerStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.cs[id]
	if !ok {
		return nil, fmt.Errorf("container status: %w", runtimes.NotFoundf("container %s", id))
	}
	return cloneStatus(&c.Status), nil
}

func cloneStatus(s *runtimes.ContainerStatus) *runtimes.ContainerStatus {
	c := *s
	c.Labels = maps.Clone(s.Labels)
	return &c
}

// ListContainers implements runtimes.Runtime.
func (e *Engine) ListContainers(ctx context.Context, sandboxID string) ([]*runtimes.ContainerStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*runtimes.ContainerStatus
	for _, c := range e.cs {
		if sandboxID == "" || c.Status.SandboxID == sandboxID {
			out = append(out, cloneStatus(&c.Status))
		}
	}
	slices.SortFunc(out, func(a, b *runtimes.ContainerStatus) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Running returns what a running container was started with, and its Proc
// (nil for an instant while it starts). It returns an error wrapping
// ErrNotFound when no container with that ID is running.
func (e *Engine) Running(id string) (*Container, Proc, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.cs[id]
	if !ok || c.Status.State != runtimes.ContainerRunning {
		return nil, nil, runtimes.NotFoundf("running container %s", id)
	}
	run := &Container{ID: id, Config: cloneConfig(&c.Config), ImageRef: c.Status.ImageRef}
	if sb := e.sbs[c.Status.SandboxID]; sb != nil {
		run.Sandbox = sb.Config
	}
	return run, c.proc, nil
}
