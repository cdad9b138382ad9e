package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/internal/version"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// Version is the agent version a node advertises as nodeInfo.kubeletVersion
// unless Config.AgentVersion overrides it: kyb's one version.
var Version = version.Version

// Config configures an Agent. The zero value of every field means its
// default; New fills the defaults in and rejects bad values.
type Config struct {
	// Name is the node name, a DNS-1123 label (it is a token of NATS
	// subjects, so it holds no dots). Default: the host name, lowercased, up
	// to its first dot, with characters a label cannot hold replaced by '-'.
	Name string
	// DataDir holds pod volumes (emptyDir), container log files and log
	// offsets. Default: /var/lib/kyb/agent.
	DataDir string
	// Labels and Taints are sent with the Node on register.
	Labels map[string]string
	Taints []api.Taint
	// PodCIDR is passed to runtimes that allocate pod IPs; when empty the
	// node spec.podCIDR returned by register is used.
	PodCIDR string

	// MaxPods is the `pods` capacity, counted for container pods. Default 110.
	MaxPods int64
	// MaxWasmPods is the `kyb.dev/wasm-pods` capacity. Default 2000.
	MaxWasmPods int64
	// ReservedCPUMilli and ReservedMemory are held back from allocatable for
	// the system and the agent. Defaults: 100m and 256 MiB (at most a tenth
	// of the machine's memory).
	ReservedCPUMilli int64
	ReservedMemory   int64

	// HeartbeatInterval is how often the agent beats. Default 2s.
	HeartbeatInterval time.Duration
	// StatusInterval is how often the node status is re-sent when nothing
	// changed. Default 10s.
	StatusInterval time.Duration
	// StatsInterval is how often the agent samples its pods' usage and
	// reports it (kyb top, the dashboard's plots). Default 10s; negative:
	// never.
	StatsInterval time.Duration
	// StatusFlushInterval is the least time between two pod status
	// batches. Default 0: group commit, where an update goes out at once
	// unless a batch is in flight, and everything that changed meanwhile
	// goes in the next batch as soon as that one is acknowledged, so
	// batches grow with load without a timer adding latency.
	StatusFlushInterval time.Duration
	// StatusBatchMax sends a batch at once when this many pods are pending.
	// Default 500.
	StatusBatchMax int
	// RequestTimeout bounds each request to the control plane. Default 5s.
	RequestTimeout time.Duration

	// BackoffBase, BackoffMax and BackoffReset shape the restart (and image
	// pull) back-off of a container: BackoffBase doubling up to BackoffMax,
	// back to BackoffBase after the container ran BackoffReset. Defaults:
	// 10s, 5m, 10m.
	BackoffBase  time.Duration
	BackoffMax   time.Duration
	BackoffReset time.Duration

	// LogPollInterval is how often a running container's log file is read.
	// Default 150ms.
	LogPollInterval time.Duration

	// ProbeSecond is how long one second of a probe's timing fields
	// (initialDelaySeconds, periodSeconds, timeoutSeconds) lasts. Default
	// 1s; tests shorten it so that a probe with periodSeconds 1 runs every
	// few milliseconds.
	ProbeSecond time.Duration

	// AgentVersion overrides Version in nodeInfo.
	AgentVersion string

	// ServiceEnv gives the cluster-provided variables of a pod's
	// containers (the services' FOO_SERVICE_HOST, ...), added as kubelet
	// adds them (envvars.go). Nil means the agent's own: the Services the
	// control plane hands the node (Agent.ServiceEnv).
	ServiceEnv ServiceEnvFunc
	// ConfigResync is how often every ConfigMap and Secret the pods use is
	// fetched again, a backstop for change notices missed while
	// disconnected (a reconnect also refetches). Default 1m.
	ConfigResync time.Duration
	// ClusterDNS is the cluster DNS service IP written as the nameserver of
	// pods with dnsPolicy ClusterFirst (kubelet's --cluster-dns); "" gives
	// every pod the node's resolv.conf. The agent's DNS server answers on
	// it (node/dns). ClusterDomain defaults to cluster.local.
	ClusterDNS    string
	ClusterDomain string
	// ResolvConf is the node's resolver file, for pods with dnsPolicy
	// Default and for forwarded queries. Default /etc/resolv.conf.
	ResolvConf string
	// ServiceProxy runs the service proxy (node/proxy): nftables rules in
	// the table ip kyb and the wasm gateway on the node's address.
	ServiceProxy bool
	// ProxyTable names the proxy's nftables table; "kyb" when empty (tests
	// use one of their own).
	ProxyTable string
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: read host name: %w", err)
		}
		c.Name = NameFromHostname(h)
	}
	if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		return fmt.Errorf("node name %q: %s", c.Name, strings.Join(errs, "; "))
	}
	if c.DataDir == "" {
		c.DataDir = "/var/lib/kyb/agent"
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatInterval, 2*time.Second)
	def(&c.StatusInterval, 10*time.Second)
	def(&c.StatsInterval, 10*time.Second)
	def(&c.RequestTimeout, 5*time.Second)
	def(&c.BackoffBase, 10*time.Second)
	def(&c.BackoffMax, 5*time.Minute)
	def(&c.BackoffReset, 10*time.Minute)
	def(&c.LogPollInterval, 150*time.Millisecond)
	def(&c.ProbeSecond, time.Second)
	def(&c.ConfigResync, time.Minute)
	if c.StatusBatchMax == 0 {
		c.StatusBatchMax = 500
	}
	if c.MaxPods == 0 {
		c.MaxPods = 110
	}
	if c.MaxWasmPods == 0 {
		c.MaxWasmPods = 2000
	}
	if c.ReservedCPUMilli == 0 {
		c.ReservedCPUMilli = 100
	}
	if c.ReservedMemory == 0 {
		c.ReservedMemory = 256 << 20
	}
	if c.AgentVersion == "" {
		c.AgentVersion = Version
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.ClusterDNS != "" {
		if ip := net.ParseIP(c.ClusterDNS); ip == nil || ip.To4() == nil {
			return fmt.Errorf("ClusterDNS %q: not an IPv4 address", c.ClusterDNS)
		}
	}
	if errs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(errs) > 0 {
		return fmt.Errorf("ClusterDomain %q: %s", c.ClusterDomain, strings.Join(errs, "; "))
	}
	for name, d := range map[string]time.Duration{
		"HeartbeatInterval": c.HeartbeatInterval, "StatusInterval": c.StatusInterval,
		"StatusFlushInterval": c.StatusFlushInterval, "RequestTimeout": c.RequestTimeout,
		"BackoffBase": c.BackoffBase, "BackoffMax": c.BackoffMax, "BackoffReset": c.BackoffReset,
		"LogPollInterval": c.LogPollInterval, "ProbeSecond": c.ProbeSecond,
	} {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative, got %v", name, d)
		}
	}
	if c.BackoffMax < c.BackoffBase {
		return fmt.Errorf("BackoffMax (%v) is below BackoffBase (%v)", c.BackoffMax, c.BackoffBase)
	}
	if c.MaxPods < 0 || c.MaxWasmPods < 0 || c.ReservedCPUMilli < 0 || c.ReservedMemory < 0 || c.StatusBatchMax < 0 {
		return fmt.Errorf("MaxPods, MaxWasmPods, ReservedCPUMilli, ReservedMemory and StatusBatchMax must not be negative")
	}
	return nil
}

// NameFromHostname turns a host name into a node name: lowercased, up to the
// first dot, characters a DNS-1123 label cannot hold replaced by '-', at most
// 63 characters; "localhost" when nothing is left.
func NameFromHostname(h string) string {
	h = strings.ToLower(h)
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	s := strings.Trim(string(b), "-")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-")
	}
	if s == "" {
		s = "localhost"
	}
	return s
}

func milli(v int64) resource.Quantity  { return *resource.NewMilliQuantity(v, resource.DecimalSI) }
func count(v int64) resource.Quantity  { return *resource.NewQuantity(v, resource.DecimalSI) }
func binary(v int64) resource.Quantity { return *resource.NewQuantity(v, resource.BinarySI) }
