package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Labels the runtime keeps on each containerd container; user labels are
// stored beside them and returned without these.
const (
	labelPrefix    = "io.kybernetes.runtime/"
	labelSandbox   = labelPrefix + "sandbox"
	labelName      = labelPrefix + "name"
	labelAttempt   = labelPrefix + "attempt"
	labelPod       = labelPrefix + "pod"
	labelImage     = labelPrefix + "image"
	labelImageRef  = labelPrefix + "image-ref"
	labelLogPath   = labelPrefix + "log-path"
	labelStartedAt = labelPrefix + "started-at"
	labelReason    = labelPrefix + "reason"
)

// CreateContainer creates a container in the sandbox's network namespace
// from an image that EnsureImage made present; it does not start it. The
// sandbox must exist (else an error wrapping runtimes.ErrNotFound). Nothing
// is left behind when it fails.
func (r *Runtime) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimes.ContainerConfig) (string, error) {
	ctx = r.ns(ctx)
	if cfg == nil {
		return "", errors.New("create container: config is nil")
	}
	if cfg.Name == "" {
		return "", errors.New("create container: name is empty")
	}
	sb, err := r.readSandbox(sandboxID)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", cfg.Name, err)
	}
	what := fmt.Sprintf("create container %s/%s/%s", sb.Namespace, sb.Name, cfg.Name)
	name, err := normalizeRef(cfg.Image)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	img, err := r.client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return "", fmt.Errorf("%s: %w", what, runtimes.WithReason(runtimes.ReasonErrImageNeverPull, true, runtimes.NotFoundf("image %s is not present", cfg.Image)))
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, mapErr(err))
	}
	snap, err := r.snapshotterName(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if err := ensureUnpacked(ctx, img, snap); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if cfg.LogPath != "" {
		if !filepath.IsAbs(cfg.LogPath) {
			return "", fmt.Errorf("%s: logPath %q is not absolute", what, cfg.LogPath)
		}
		if err := os.MkdirAll(filepath.Dir(cfg.LogPath), 0o755); err != nil {
			return "", fmt.Errorf("%s: log dir: %w", what, err)
		}
	}
	for _, m := range cfg.Mounts {
		if !filepath.IsAbs(m.HostPath) || !path.IsAbs(m.ContainerPath) {
			return "", fmt.Errorf("%s: mount %q -> %q: paths must be absolute", what, m.HostPath, m.ContainerPath)
		}
	}

	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	labels[labelSandbox] = sb.ID
	labels[labelName] = cfg.Name
	labels[labelAttempt] = strconv.Itoa(int(cfg.Attempt))
	labels[labelPod] = sb.Namespace + "/" + sb.Name
	labels[labelImage] = cfg.Image
	labels[labelImageRef] = img.Target().Digest.String()
	labels[labelLogPath] = cfg.LogPath
	switch {
	case cfg.Stdin && cfg.StdinOnce:
		labels[labelStdin] = stdinOnce
	case cfg.Stdin:
		labels[labelStdin] = stdinOpen
	}
	if cfg.TTY {
		if r.cfg.LogDriver == "file" {
			return "", runtimes.WithReason(runtimes.ReasonCreateContainerConfigError, false, fmt.Errorf("%s: tty: the shim's own file logging cannot log a terminal; it needs the log driver binary (Config.LogDriver)", what))
		}
		labels[labelTTY] = "true"
	}

	id := newID()
	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		withKubeArgs(img, cfg.Command, cfg.Args),
		oci.WithMounts(r.podMounts(sb, cfg.Mounts)),
		oci.WithCgroup(path.Join("/", r.cfg.Namespace, id)),
	}
	if sb.HostNetwork {
		specOpts = append(specOpts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
	} else {
		specOpts = append(specOpts, oci.WithHostname(sb.Hostname),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.NetNS}))
	}
	if len(cfg.Env) > 0 {
		env := make([]string, 0, len(cfg.Env))
		for _, e := range cfg.Env {
			if e.Name == "" || strings.Contains(e.Name, "=") {
				return "", fmt.Errorf("%s: env name %q is invalid", what, e.Name)
			}
			env = append(env, e.Name+"="+e.Value)
		}
		specOpts = append(specOpts, oci.WithEnv(env))
	}
	if cfg.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(cfg.WorkingDir))
	}
	if cfg.TTY {
		specOpts = append(specOpts, oci.WithTTY)
	}
	specOpts = append(specOpts, resourceOpts(cfg, r.cfg.PidsLimit)...)
	secOpts, err := r.securityOpts(&cfg.Security)
	if err != nil {
		return "", runtimes.WithReason(runtimes.ReasonCreateContainerConfigError, false, fmt.Errorf("%s: %w", what, err))
	}
	specOpts = append(specOpts, secOpts...)
	if err := r.prepareEmptyDirs(sb, cfg.Mounts); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}

	// Once begun, the create runs to its end: cut short by the client, the
	// daemon may still prepare the snapshot after the cleanup below.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mutateTimeout)
	defer cancel()
	_, err = r.client.NewContainer(nctx, id,
		cclient.WithImage(img),
		cclient.WithSnapshotter(snap),
		cclient.WithNewSnapshot(id, img),
		cclient.WithContainerLabels(labels),
		cclient.WithNewSpec(specOpts...),
	)
	if err != nil {
		// Remove what NewContainer may have made before it failed.
		cctx := context.WithoutCancel(ctx)
		if c, lerr := r.client.LoadContainer(cctx, id); lerr == nil {
			c.Delete(cctx, cclient.WithSnapshotCleanup)
		}
		if rerr := r.client.SnapshotService(snap).Remove(cctx, id); rerr != nil && !errdefs.IsNotFound(rerr) {
			r.log.Warn("remove snapshot after failed create", "id", id, "err", rerr)
		}
		if errors.Is(err, errRunAsRoot) {
			return "", runtimes.WithReason(runtimes.ReasonCreateContainerConfigError, false, fmt.Errorf("%s: %w", what, errRunAsRoot))
		}
		return "", runtimes.WithReason(runtimes.ReasonCreateContainerError, false, fmt.Errorf("%s: %w", what, mapErr(err)))
	}
	r.log.Debug("container created", "pod", labels[labelPod], "container", cfg.Name, "id", id)
	return id, nil
}

// mutateTimeout bounds a containerd call that creates something (a
// container, a task) and runs without the caller's cancellation.
const mutateTimeout = 2 * time.Minute

// withKubeArgs applies Kubernetes semantics on top of the image config:
// command replaces ENTRYPOINT (and drops CMD), args replace CMD.
func withKubeArgs(img cclient.Image, command, args []string) oci.SpecOpts {
	return func(ctx context.Context, c oci.Client, cont *containers.Container, s *oci.Spec) error {
		switch {
		case len(command) > 0:
			s.Process.Args = append(append([]string{}, command...), args...)
		case len(args) > 0:
			if err := oci.WithImageConfigArgs(img, args)(ctx, c, cont, s); err != nil {
				return err
			}
		}
		if len(s.Process.Args) == 0 {
			return errors.New("no command: the image has no ENTRYPOINT or CMD and the container sets no command")
		}
		return nil
	}
}

func (r *Runtime) podMounts(sb *sandboxRecord, ms []runtimes.Mount) []specs.Mount {
	dir := r.sandboxDir(sb.ID)
	out := []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(dir, "hosts"), Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(dir, "hostname"), Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(dir, "resolv.conf"), Options: []string{"rbind", "rprivate", "rw"}},
	}
	for _, m := range ms {
		opt := "rw"
		if m.ReadOnly {
			opt = "ro"
		}
		out = append(out, specs.Mount{Destination: m.ContainerPath, Type: "bind", Source: m.HostPath, Options: []string{"rbind", "rprivate", opt}})
	}
	return out
}

// cpuShares maps a CPU request in millicores to cgroup v1 shares the way
// the kubelet does.
func cpuShares(milli int64) uint64 {
	s := milli * 1024 / 1000
	if s < 2 {
		s = 2
	}
	return uint64(s)
}

const cfsPeriod = 100000

// resourceOpts maps a container's resources to cgroup limits; a container
// without a pids limit gets defaultPids (none when it is negative).
func resourceOpts(cfg *runtimes.ContainerConfig, defaultPids int64) []oci.SpecOpts {
	var opts []oci.SpecOpts
	req := cfg.CPURequestMilli
	if req == 0 {
		req = cfg.CPULimitMilli
	}
	if req > 0 {
		opts = append(opts, oci.WithCPUShares(cpuShares(req)))
	}
	if cfg.CPULimitMilli > 0 {
		quota := cfg.CPULimitMilli * cfsPeriod / 1000
		if quota < 1000 {
			quota = 1000
		}
		opts = append(opts, oci.WithCPUCFS(quota, cfsPeriod))
	}
	if cfg.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(cfg.MemoryLimitBytes)))
	}
	pids := cfg.PidsLimit
	if pids == 0 {
		pids = defaultPids
	}
	if pids > 0 {
		opts = append(opts, oci.WithPidsLimit(pids))
	}
	return opts
}

func (r *Runtime) load(ctx context.Context, id string) (cclient.Container, error) {
	if id == "" {
		return nil, runtimes.NotFoundf("container %q", id)
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return c, nil
}

// StartContainer starts a created container; its stdout and stderr are
// appended to its LogPath by the containerd shim.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	info, err := c.Info(ctx, cclient.WithoutRefreshedMetadata)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, mapErr(err))
	}
	creator, err := r.taskIO(id, info.Labels[labelLogPath], info.Labels[labelStdin], info.Labels[labelTTY] == "true")
	if err != nil {
		return runtimes.WithReason("RunContainerError", false, fmt.Errorf("start container %s: %w", id, err))
	}
	// As for NewContainer: a task create cut short leaves a task whose
	// shim says "container not created".
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mutateTimeout)
	defer cancel()
	task, err := c.NewTask(tctx, creator)
	if err != nil {
		return runtimes.WithReason("RunContainerError", false, fmt.Errorf("start container %s: create task: %w", id, mapErr(err)))
	}
	// Record the start before it happens, so that a status read at any
	// time after Start returns has it and it is never after the exit.
	if _, err := c.SetLabels(ctx, map[string]string{labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		task.Delete(context.WithoutCancel(ctx), cclient.WithProcessKill)
		return fmt.Errorf("start container %s: record start time: %w", id, mapErr(err))
	}
	if err := task.Start(ctx); err != nil {
		task.Delete(context.WithoutCancel(ctx), cclient.WithProcessKill)
		return runtimes.WithReason("RunContainerError", false, fmt.Errorf("start container %s: %w", id, mapErr(err)))
	}
	return nil
}

// exitReason names why a container that exited with code ended.
func (r *Runtime) exitReason(id string, code uint32) string {
	if code == 0 {
		return runtimes.ReasonCompleted
	}
	if r.evictedFor(id) != "" {
		return runtimes.ReasonEmptyDirSizeLimit
	}
	if r.wasOOMKilled(id) {
		return runtimes.ReasonOOMKilled
	}
	return runtimes.ReasonFailed
}

// WaitContainer returns a channel that yields one ExitResult when the
// container exits, at once if it already has. It works for containers
// created by an earlier Runtime. A container that was created but not yet
// started is waited for until it starts and exits. Cancelling ctx yields a
// result with Err set.
func (r *Runtime) WaitContainer(ctx context.Context, id string) (<-chan runtimes.ExitResult, error) {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("wait container %s: %w", id, err)
	}
	ch := make(chan runtimes.ExitResult, 1)
	go func() { ch <- r.wait(ctx, c) }()
	return ch, nil
}

func (r *Runtime) wait(ctx context.Context, c cclient.Container) runtimes.ExitResult {
	for {
		task, err := c.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			// Not started yet, or its task was removed: tell which.
			info, ierr := c.Info(ctx, cclient.WithoutRefreshedMetadata)
			if ierr != nil {
				return runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", c.ID(), mapErr(ierr))}
			}
			if info.Labels[labelStartedAt] != "" {
				return runtimes.ExitResult{ExitCode: -1, Reason: "Unknown", Message: "the container's task is gone", FinishedAt: time.Now()}
			}
			select {
			case <-ctx.Done():
				return runtimes.ExitResult{Err: ctx.Err()}
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", c.ID(), mapErr(err))}
		}
		sc, err := task.Wait(ctx)
		if err != nil {
			return runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", c.ID(), mapErr(err))}
		}
		select {
		case <-ctx.Done():
			return runtimes.ExitResult{Err: ctx.Err()}
		case st := <-sc:
			code, at, err := st.Result()
			if err != nil {
				if errdefs.IsNotFound(err) {
					continue // task removed while waiting
				}
				return runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", c.ID(), mapErr(err))}
			}
			return runtimes.ExitResult{ExitCode: int32(code), Reason: r.exitReason(c.ID(), code), Message: r.evictedFor(c.ID()), FinishedAt: at}
		}
	}
}

// StopContainer sends SIGTERM, waits up to grace for the container to exit,
// then sends SIGKILL, and returns once it has exited. Stopping a container
// that does not exist, was never started or has exited succeeds.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if errors.Is(err, runtimes.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if err := r.stop(ctx, c, grace); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

func (r *Runtime) stop(ctx context.Context, c cclient.Container, grace time.Duration) error {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(err)
	}
	// A task whose creation was cut short (its context cancelled) can be
	// known to containerd while the shim answers "container not created":
	// there is no process to stop.
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(err)
	}
	if st.Status == cclient.Stopped {
		return nil
	}
	sc, err := task.Wait(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(err)
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("send SIGTERM: %w", mapErr(err))
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-sc:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, cclient.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("send SIGKILL: %w", mapErr(err))
	}
	select {
	case <-sc:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer removes a container, its task and its snapshot. A
// running container is killed first. Removing a container that does not
// exist succeeds.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if errors.Is(err, runtimes.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return r.removeContainer(ctx, c, true)
}

func (r *Runtime) removeContainer(ctx context.Context, c cclient.Container, kill bool) error {
	if kill {
		if err := r.stop(ctx, c, 0); err != nil {
			return fmt.Errorf("remove container %s: kill: %w", c.ID(), err)
		}
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, cclient.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: delete task: %w", c.ID(), mapErr(err))
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", c.ID(), mapErr(err))
	}
	if err := c.Delete(ctx, cclient.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", c.ID(), mapErr(err))
	}
	r.removeStdin(c.ID())
	r.oomMu.Lock()
	delete(r.oomSeen, c.ID())
	delete(r.evicted, c.ID())
	r.oomMu.Unlock()
	return nil
}

// ContainerStatus returns the container's state as containerd holds it;
// an unknown id gives an error wrapping runtimes.ErrNotFound.
func (r *Runtime) ContainerStatus(ctx context.Context, id string) (*runtimes.ContainerStatus, error) {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("container status %s: %w", id, err)
	}
	info, err := c.Info(ctx, cclient.WithoutRefreshedMetadata)
	if err != nil {
		return nil, fmt.Errorf("container status %s: %w", id, mapErr(err))
	}
	st, err := r.status(ctx, c, info)
	if err != nil {
		return nil, fmt.Errorf("container status %s: %w", id, err)
	}
	return st, nil
}

func (r *Runtime) status(ctx context.Context, c cclient.Container, info containers.Container) (*runtimes.ContainerStatus, error) {
	l := info.Labels
	attempt, _ := strconv.Atoi(l[labelAttempt])
	st := &runtimes.ContainerStatus{
		ID:        info.ID,
		SandboxID: l[labelSandbox],
		Name:      l[labelName],
		Attempt:   int32(attempt),
		Image:     l[labelImage],
		ImageRef:  l[labelImageRef],
		LogPath:   l[labelLogPath],
		CreatedAt: info.CreatedAt,
		State:     runtimes.ContainerCreated,
		Labels:    map[string]string{},
	}
	for k, v := range l {
		if !strings.HasPrefix(k, labelPrefix) {
			st.Labels[k] = v
		}
	}
	if s := l[labelStartedAt]; s != "" {
		st.StartedAt, _ = time.Parse(time.RFC3339Nano, s)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		if !st.StartedAt.IsZero() {
			st.State = runtimes.ContainerExited
			st.ExitCode = -1
			st.Reason = "Unknown"
			st.Message = "the container's task is gone"
		}
		return st, nil
	}
	if err != nil {
		return nil, mapErr(err)
	}
	ts, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return nil, mapErr(err)
	}
	switch ts.Status {
	case cclient.Running, cclient.Paused, cclient.Pausing:
		st.State = runtimes.ContainerRunning
	case cclient.Stopped:
		st.State = runtimes.ContainerExited
		st.ExitCode = int32(ts.ExitStatus)
		st.FinishedAt = ts.ExitTime
		st.Reason = r.exitReason(info.ID, ts.ExitStatus)
		st.Message = r.evictedFor(info.ID)
	case cclient.Created:
		st.State = runtimes.ContainerCreated
	}
	return st, nil
}

// containersOf returns the containerd containers of a sandbox, or of every
// sandbox when sandboxID is "".
func (r *Runtime) containersOf(ctx context.Context, sandboxID string) ([]cclient.Container, error) {
	filter := fmt.Sprintf("labels.%q", labelSandbox)
	if sandboxID != "" {
		filter = fmt.Sprintf("labels.%q==%q", labelSandbox, sandboxID)
	}
	cs, err := r.client.Containers(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", mapErr(err))
	}
	return cs, nil
}

// ListContainers returns the containers of a sandbox (every sandbox when
// sandboxID is ""), including those made by an earlier Runtime, oldest
// first. An unknown sandbox has no containers.
func (r *Runtime) ListContainers(ctx context.Context, sandboxID string) ([]*runtimes.ContainerStatus, error) {
	ctx = r.ns(ctx)
	cs, err := r.containersOf(ctx, sandboxID)
	if err != nil {
		return nil, err
	}
	out := make([]*runtimes.ContainerStatus, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, cclient.WithoutRefreshedMetadata)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", mapErr(err))
		}
		st, err := r.status(ctx, c, info)
		if errdefs.IsNotFound(err) || errors.Is(err, runtimes.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}
