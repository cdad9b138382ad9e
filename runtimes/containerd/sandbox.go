package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/pkg/netns"

	"github.com/kybernetes/kybernetes/runtimes"
)

// sandboxRecord is what the runtime keeps of a sandbox, as JSON in
// StateDir/sandboxes/<id>/sandbox.json, next to the pod's hosts,
// hostname and resolv.conf files.
type sandboxRecord struct {
	ID        string                 `json:"id"`
	Namespace string                 `json:"namespace"`
	Name      string                 `json:"name"`
	UID       string                 `json:"uid"`
	Hostname  string                 `json:"hostname"`
	Labels    map[string]string      `json:"labels,omitempty"`
	Ports     []runtimes.PortMapping `json:"ports,omitempty"`
	NetNS     string                 `json:"netns"`
	IP        string                 `json:"ip"`
	CIDR      string                 `json:"cidr,omitempty"`
	CreatedAt time.Time              `json:"createdAt"`
	// Pending marks a record written as soon as the network namespace
	// exists, before the pod network is set up: a process that dies
	// half-way through CreateSandbox leaves a sandbox that ListSandboxes
	// lists (not ready) and RemoveSandbox removes, namespace included.
	Pending bool `json:"pending,omitempty"`
	// HostNetwork: the pod uses the node's network and UTS namespaces; it
	// has no namespace, IP or CNI attachment of its own.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// DNS is the pod's resolver configuration; nil copies the node's.
	DNS *runtimes.DNSConfig `json:"dns,omitempty"`
	// EmptyDirs are the emptyDir volumes the runtime backs (tmpfs) or
	// measures (disk with a size limit).
	EmptyDirs []emptyDirRecord `json:"emptyDirs,omitempty"`
}

func (r *Runtime) sandboxDir(id string) string {
	return filepath.Join(r.cfg.StateDir, "sandboxes", id)
}

func (r *Runtime) readSandbox(id string) (*sandboxRecord, error) {
	if id == "" || strings.ContainsAny(id, "/.") {
		return nil, runtimes.NotFoundf("sandbox %q", id)
	}
	b, err := os.ReadFile(filepath.Join(r.sandboxDir(id), "sandbox.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, runtimes.NotFoundf("sandbox %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read sandbox %s: %w", id, err)
	}
	var sb sandboxRecord
	if err := json.Unmarshal(b, &sb); err != nil {
		return nil, fmt.Errorf("read sandbox %s: %w", id, err)
	}
	return &sb, nil
}

func (r *Runtime) writeSandbox(sb *sandboxRecord) error {
	b, err := json.MarshalIndent(sb, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(r.sandboxDir(sb.ID), "sandbox.json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func validDNSLabelish(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/\x00\n")
}

// CreateSandbox creates the pod's network namespace, attaches it to the pod
// network with its host ports, and records the sandbox. On failure it
// releases whatever it had made.
func (r *Runtime) CreateSandbox(ctx context.Context, cfg *runtimes.SandboxConfig) (_ *runtimes.Sandbox, retErr error) {
	if cfg == nil {
		return nil, errors.New("create sandbox: config is nil")
	}
	if !validDNSLabelish(cfg.Name) || !validDNSLabelish(cfg.Namespace) {
		return nil, fmt.Errorf("create sandbox: pod namespace %q and name %q must be set", cfg.Namespace, cfg.Name)
	}
	for _, p := range cfg.Ports {
		if p.HostPort < 0 || p.HostPort > 65535 || p.ContainerPort <= 0 || p.ContainerPort > 65535 {
			return nil, fmt.Errorf("create sandbox %s/%s: port %q: containerPort %d / hostPort %d out of range", cfg.Namespace, cfg.Name, p.Name, p.ContainerPort, p.HostPort)
		}
	}
	what := fmt.Sprintf("create sandbox %s/%s", cfg.Namespace, cfg.Name)
	if cfg.UID != "" {
		// One sandbox per pod: a second CreateSandbox for the pod (its
		// caller lost track of the first) gets the ready one it has.
		defer r.lockUID(cfg.UID)()
		existing, err := r.readyByUID(cfg.UID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if existing != nil {
			r.log.Warn("pod already has a ready sandbox; returning it", "pod", cfg.Namespace+"/"+cfg.Name, "uid", cfg.UID, "sandbox", existing.ID)
			return existing.public(runtimes.SandboxReady), nil
		}
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = cfg.Name
	}
	if len(hostname) > 63 {
		hostname = hostname[:63]
	}
	sb := &sandboxRecord{
		ID:        newID(),
		Namespace: cfg.Namespace,
		Name:      cfg.Name,
		UID:       cfg.UID,
		Hostname:  hostname,
		Labels:    cfg.Labels,
		Ports:     cfg.Ports,
		CIDR:      cfg.PodCIDR,
		DNS:       cfg.DNS,
		CreatedAt: time.Now().UTC(),
	}
	dir := r.sandboxDir(sb.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	if cfg.HostNetwork {
		return r.createHostNetworkSandbox(sb, what)
	}
	ns, err := netns.NewNetNS(filepath.Join(r.cfg.StateDir, "netns"))
	if err != nil {
		return nil, fmt.Errorf("%s: create network namespace: %w", what, err)
	}
	sb.NetNS = ns.GetPath()
	defer func() {
		if retErr != nil {
			if err := ns.Remove(); err != nil {
				r.log.Warn("remove network namespace after failed create", "netns", sb.NetNS, "err", err)
			}
		}
	}()
	if sb.CIDR == "" {
		sb.CIDR = r.net.currentCIDR()
	}
	sb.Pending = true
	if err := r.writeSandbox(sb); err != nil {
		return nil, fmt.Errorf("%s: record: %w", what, err)
	}
	sb.Pending = false
	ip, err := r.net.setup(ctx, cfg.PodCIDR, sb)
	if err != nil {
		// Release what a partly successful setup may hold (IP, veth, ports).
		if rerr := r.net.remove(context.WithoutCancel(ctx), sb); rerr != nil {
			r.log.Warn("CNI remove after failed setup", "sandbox", sb.ID, "err", rerr)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	sb.IP = ip
	if err := r.writePodFiles(sb); err != nil {
		r.net.remove(context.WithoutCancel(ctx), sb)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := r.writeSandbox(sb); err != nil {
		r.net.remove(context.WithoutCancel(ctx), sb)
		return nil, fmt.Errorf("%s: record: %w", what, err)
	}
	r.log.Info("sandbox created", "pod", cfg.Namespace+"/"+cfg.Name, "sandbox", sb.ID, "ip", ip)
	return sb.public(runtimes.SandboxReady), nil
}

func (n *network) currentCIDR() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cidr
}

// writePodFiles writes the hostname, hosts and resolv.conf files that every
// container of the pod mounts.
func (r *Runtime) writePodFiles(sb *sandboxRecord) error {
	dir := r.sandboxDir(sb.ID)
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", sb.IP, sb.Hostname)
	files := map[string][]byte{
		"hostname":    []byte(sb.Hostname + "\n"),
		"hosts":       []byte(hosts),
		"resolv.conf": sb.resolvConf(),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// resolvConf is the pod's resolv.conf: its DNS configuration, or the
// node's file when it has none.
func (sb *sandboxRecord) resolvConf() []byte {
	if sb.DNS != nil {
		return sb.DNS.ResolvConf()
	}
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	return b
}

func (sb *sandboxRecord) public(state runtimes.SandboxState) *runtimes.Sandbox {
	labels := make(map[string]string, len(sb.Labels))
	for k, v := range sb.Labels {
		labels[k] = v
	}
	return &runtimes.Sandbox{
		ID:        sb.ID,
		Namespace: sb.Namespace,
		Name:      sb.Name,
		UID:       sb.UID,
		Labels:    labels,
		IP:        sb.IP,
		State:     state,
		CreatedAt: sb.CreatedAt,
	}
}

// RemoveSandbox kills and removes every container of the sandbox, detaches
// it from the pod network (releasing its IP and host ports), removes its
// network namespace and its record. Removing a sandbox that does not exist
// succeeds.
//
// The network and the namespace are released even when a container cannot
// be removed (or ctx is cancelled part way): the record then stays, so
// that ListSandboxes still lists the sandbox (not ready) and a later
// RemoveSandbox removes the rest.
func (r *Runtime) RemoveSandbox(ctx context.Context, id string) error {
	what := "remove sandbox " + id
	var errs []error
	cs, err := r.containersOf(r.ns(ctx), id)
	if err != nil {
		errs = append(errs, err)
	}
	for _, c := range cs {
		if err := r.removeContainer(r.ns(ctx), c, true); err != nil {
			errs = append(errs, err)
		}
	}
	sb, err := r.readSandbox(id)
	if errors.Is(err, runtimes.ErrNotFound) {
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, errors.Join(append(errs, err)...))
	}
	r.sbMu.Lock()
	defer r.sbMu.Unlock()
	if sb, err = r.readSandbox(id); err != nil { // as prepareEmptyDirs may have changed it
		return fmt.Errorf("%s: %w", what, errors.Join(append(errs, err)...))
	}
	if err := unmountEmptyDirs(sb); err != nil {
		errs = append(errs, err)
	}
	if sb.HostNetwork {
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := os.RemoveAll(r.sandboxDir(id)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		r.log.Info("sandbox removed", "pod", sb.Namespace+"/"+sb.Name, "sandbox", id)
		return nil
	}
	// A namespace that is gone (the node rebooted, or an earlier call
	// removed it) still has an IP and host ports to release; the plugins
	// do that without a path.
	nsPath := sb.NetNS
	if closed, err := netns.LoadNetNS(sb.NetNS).Closed(); err == nil && closed {
		sb.NetNS = ""
	}
	if err := r.net.remove(ctx, sb); err != nil {
		return fmt.Errorf("%s: %w", what, errors.Join(append(errs, err)...))
	}
	if err := netns.LoadNetNS(nsPath).Remove(); err != nil {
		return fmt.Errorf("%s: remove network namespace: %w", what, errors.Join(append(errs, err)...))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: network released, but: %w", what, err)
	}
	if err := os.RemoveAll(r.sandboxDir(id)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	r.log.Info("sandbox removed", "pod", sb.Namespace+"/"+sb.Name, "sandbox", id)
	return nil
}

// lockUID serialises CreateSandbox calls for one pod UID; it returns the
// unlock function.
func (r *Runtime) lockUID(uid string) func() {
	r.uidMu.Lock()
	l := r.uidLocks[uid]
	if l == nil {
		l = &uidLock{}
		r.uidLocks[uid] = l
	}
	l.n++
	r.uidMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		r.uidMu.Lock()
		if l.n--; l.n == 0 {
			delete(r.uidLocks, uid)
		}
		r.uidMu.Unlock()
	}
}

type uidLock struct {
	mu sync.Mutex
	n  int // holders and waiters
}

// ready reports whether the sandbox's creation finished and its network
// namespace is still there.
func (sb *sandboxRecord) ready() bool {
	if sb.Pending {
		return false
	}
	if sb.HostNetwork {
		return true
	}
	closed, err := netns.LoadNetNS(sb.NetNS).Closed()
	return err == nil && !closed
}

// readyByUID returns the recorded, fully created sandbox of pod uid whose
// network namespace is there, or nil.
func (r *Runtime) readyByUID(uid string) (*sandboxRecord, error) {
	ents, err := os.ReadDir(filepath.Join(r.cfg.StateDir, "sandboxes"))
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	for _, e := range ents {
		sb, err := r.readSandbox(e.Name())
		if err == nil && sb.UID == uid && sb.ready() {
			return sb, nil
		}
	}
	return nil, nil
}

// ListSandboxes returns every sandbox recorded under StateDir, oldest
// first, including those made by an earlier Runtime. A sandbox whose
// network namespace is gone, or whose creation did not finish (the process
// died in CreateSandbox), is SandboxNotReady.
func (r *Runtime) ListSandboxes(ctx context.Context) ([]*runtimes.Sandbox, error) {
	ents, err := os.ReadDir(filepath.Join(r.cfg.StateDir, "sandboxes"))
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []*runtimes.Sandbox
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sb, err := r.readSandbox(e.Name())
		if errors.Is(err, runtimes.ErrNotFound) {
			continue // being created or removed
		}
		if err != nil {
			return nil, fmt.Errorf("list sandboxes: %w", err)
		}
		state := runtimes.SandboxNotReady
		if sb.ready() {
			state = runtimes.SandboxReady
		}
		out = append(out, sb.public(state))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// createHostNetworkSandbox records a sandbox in the node's network: the
// node's hostname, and its hosts and resolv.conf files copied for the pod.
// Host ports need no mapping: the containers bind them on the node.
func (r *Runtime) createHostNetworkSandbox(sb *sandboxRecord, what string) (*runtimes.Sandbox, error) {
	sb.HostNetwork = true
	sb.Ports = nil
	if h, err := os.Hostname(); err == nil {
		sb.Hostname = h
	}
	dir := r.sandboxDir(sb.ID)
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		hosts = []byte("127.0.0.1\tlocalhost\n")
	}
	for name, b := range map[string][]byte{"hostname": []byte(sb.Hostname + "\n"), "hosts": hosts, "resolv.conf": sb.resolvConf()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, fmt.Errorf("%s: write %s: %w", what, name, err)
		}
	}
	if err := r.writeSandbox(sb); err != nil {
		return nil, fmt.Errorf("%s: record: %w", what, err)
	}
	r.log.Info("sandbox created in the host network", "pod", sb.Namespace+"/"+sb.Name, "sandbox", sb.ID)
	return sb.public(runtimes.SandboxReady), nil
}
