package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	gocni "github.com/containerd/go-cni"

	"github.com/kybernetes/kybernetes/runtimes"
)

// network wraps go-cni with a config generated from the pod CIDR (or read
// from Config.CNIConfDir). Safe for concurrent use.
type network struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	cidr string
	cni  gocni.CNI

	// opMu serialises CNI operations. The plugins serialise on host-local's
	// and iptables' locks anyway, and go-cni's race-build mutex (go-deadlock)
	// reports concurrent read locks as recursive locking and exits.
	opMu sync.Mutex
}

func newNetwork(cfg Config, log *slog.Logger) *network {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &network{cfg: cfg, log: log}
}

// ipamDir is where host-local keeps its allocations: one file per IP under
// ipamDir/<network name>.
func (n *network) ipamDir() string { return n.cfg.IPAMDir }

// conflist returns the generated CNI network config for cidr.
func (n *network) conflist(cidr string) ([]byte, error) {
	type m = map[string]any
	conf := m{
		"cniVersion": "1.0.0",
		"name":       n.cfg.NetworkName,
		"plugins": []m{
			{
				"type":        "bridge",
				"bridge":      n.cfg.BridgeName,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": m{
					"type":    "host-local",
					"ranges":  [][]m{{{"subnet": cidr}}},
					"routes":  []m{{"dst": "0.0.0.0/0"}},
					"dataDir": n.ipamDir(),
				},
			},
			{
				"type":         "portmap",
				"capabilities": m{"portMappings": true},
				"snat":         true,
			},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// setCIDR (re)loads the generated network for cidr.
func (n *network) setCIDR(cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("pod CIDR %q: only IPv4 ranges are supported", cidr)
	}
	cidr = p.Masked().String()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cni != nil && n.cidr == cidr {
		return nil
	}
	if n.cfg.CNIConfDir == "" {
		if err := clearStaleBridgeAddrs(n.cfg.BridgeName, gatewayOf(p), n.log); err != nil {
			return err
		}
	}
	c, err := n.load(cidr)
	if err != nil {
		return err
	}
	n.cni, n.cidr = c, cidr
	n.log.Info("pod network configured", "cidr", cidr, "bridge", n.cfg.BridgeName)
	return nil
}

func (n *network) load(cidr string) (gocni.CNI, error) {
	c, err := gocni.New(
		gocni.WithPluginDir(n.cfg.CNIBinDirs),
		gocni.WithInterfacePrefix("eth"),
		gocni.WithMinNetworkCount(2),
	)
	if err != nil {
		return nil, fmt.Errorf("init CNI: %w", err)
	}
	opts := []gocni.Opt{gocni.WithLoNetwork}
	if n.cfg.CNIConfDir != "" {
		opts = append(opts, gocni.WithPluginConfDir(n.cfg.CNIConfDir), gocni.WithDefaultConf)
	} else {
		b, err := n.conflist(cidr)
		if err != nil {
			return nil, err
		}
		opts = append(opts, gocni.WithConfListBytes(b))
	}
	if err := c.Load(opts...); err != nil {
		return nil, fmt.Errorf("load CNI config: %w", err)
	}
	return c, nil
}

// get returns the CNI to use; cidr, when not empty, configures it first.
func (n *network) get(cidr string) (gocni.CNI, error) {
	if cidr != "" {
		if err := n.setCIDR(cidr); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cni == nil && n.cfg.CNIConfDir != "" {
		c, err := n.load("")
		if err != nil {
			return nil, err
		}
		n.cni = c
	}
	if n.cni == nil {
		return nil, runtimes.WithReason("NetworkNotReady", true, errors.New("no pod CIDR is set for the node yet"))
	}
	return n.cni, nil
}

func cniPorts(ports []runtimes.PortMapping) []gocni.PortMapping {
	var out []gocni.PortMapping
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, gocni.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
	}
	return out
}

func cniOpts(ports []runtimes.PortMapping, sb *sandboxRecord) []gocni.NamespaceOpts {
	opts := []gocni.NamespaceOpts{
		gocni.WithLabels(map[string]string{
			"IgnoreUnknown":     "1",
			"K8S_POD_NAMESPACE": sb.Namespace,
			"K8S_POD_NAME":      sb.Name,
			"K8S_POD_UID":       sb.UID,
		}),
	}
	if pm := cniPorts(ports); len(pm) > 0 {
		opts = append(opts, gocni.WithCapabilityPortMap(pm))
	}
	return opts
}

// cniTimeout bounds one CNI operation (ADD or DEL of every network).
const cniTimeout = time.Minute

// cniContext is the context a CNI operation runs under: the caller's
// values, but not its cancellation. A plugin killed half-way (a pod deleted
// while its sandbox is created, an agent stopping while it removes one)
// leaves what a later DEL cannot find: the bridge plugin, killed after it
// deleted the pod's veth, can no longer tell which masquerade rules were
// the pod's. So once started, an operation runs to its end.
func cniContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cniTimeout)
}

// setup attaches the netns at path to the pod network and returns the pod IP.
// It fails without doing anything when ctx is already done.
func (n *network) setup(ctx context.Context, cidr string, sb *sandboxRecord) (string, error) {
	c, err := n.get(cidr)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("CNI setup: %w", err)
	}
	cctx, cancel := cniContext(ctx)
	defer cancel()
	n.opMu.Lock()
	res, err := c.Setup(cctx, sb.ID, sb.NetNS, cniOpts(sb.Ports, sb)...)
	n.opMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("CNI setup: %w", err)
	}
	for name, ifc := range res.Interfaces {
		if name == "lo" || ifc.Sandbox == "" {
			continue
		}
		for _, ip := range ifc.IPConfigs {
			if ip.IP.To4() != nil {
				return ip.IP.String(), nil
			}
		}
	}
	return "", errors.New("CNI setup: no IPv4 address for the pod")
}

// remove detaches the sandbox from the pod network, releasing its IP and
// host ports. It is a no-op when the network was never configured.
func (n *network) remove(ctx context.Context, sb *sandboxRecord) error {
	c, err := n.get("")
	if err != nil {
		if sb.CIDR == "" {
			return nil
		}
		if c, err = n.get(sb.CIDR); err != nil {
			return err
		}
	}
	cctx, cancel := cniContext(ctx)
	defer cancel()
	n.opMu.Lock()
	err = c.Remove(cctx, sb.ID, sb.NetNS, cniOpts(sb.Ports, sb)...)
	n.opMu.Unlock()
	if err != nil {
		return fmt.Errorf("CNI remove: %w", err)
	}
	return nil
}
