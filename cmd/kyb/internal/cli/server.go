package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/control/scheduler"
)

// serverFlags are the control plane flags shared by `kyb server` and `kyb up`.
type serverFlags struct {
	dataDir, listen, sync  string
	spread                 bool
	tls                    string
	tlsNames               []string
	leaseDuration, renew   time.Duration
	serviceCIDR, nodePorts string
	clusterCIDR            string
	http                   string
	restore                string
	restoreForce           bool
	rotateSecretsKey       bool
	metrics                metricsFlags

	// Clustering (kyb server only).
	name, clusterListen string
	peers               []string
	join, joinToken     string
	replicas            int
}

// registerCluster adds the clustering flags of `kyb server`.
func (f *serverFlags) registerCluster(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "this server's name in the cluster (default: the host name)")
	fl.StringVar(&f.clusterListen, "cluster-listen", "", "HOST:PORT this server's routes to the other servers listen on (mutual TLS); empty: a single server")
	fl.StringSliceVar(&f.peers, "peers", nil, "HOST:PORT route addresses of the other servers (static clustering; with --cluster-listen)")
	fl.StringVar(&f.join, "join", "", "client URL of a server of the cluster to join (with --token and --cluster-listen): the new server receives the cluster's keys")
	fl.StringVar(&f.joinToken, "token", os.Getenv("KYB_SERVER_TOKEN"), "the cluster's server token for --join (env KYB_SERVER_TOKEN; `kyb server token` on a server prints it)")
	fl.IntVar(&f.replicas, "replicas", 0, "replicas of every bucket and stream: 0 = 1, then 3 once the cluster has three servers")
}

func (f *serverFlags) register(cmd *cobra.Command, defaultDir string) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", defaultDir, "directory for cluster state (JetStream storage)")
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:4222", "HOST:PORT clients and agents connect to")
	cmd.Flags().StringVar(&f.sync, "sync", "always", "durability: always (fsync every acknowledged write) or an interval such as 1s (a power failure can lose that window; a crash cannot)")
	cmd.Flags().BoolVar(&f.spread, "spread", false, "schedule pods onto the least allocated nodes instead of bin-packing")
	cmd.Flags().StringVar(&f.tls, "tls", "auto", "auto: TLS unless --listen is a loopback address; on; off (loopback only)")
	cmd.Flags().StringSliceVar(&f.tlsNames, "tls-san", nil, "extra host names or IPs for the server certificate")
	cmd.Flags().DurationVar(&f.leaseDuration, "lease-duration", controlplane.DefaultLeaseDuration, "how long the scheduler's and controllers' leases last unrenewed; another control plane takes over about this long after the holder dies")
	cmd.Flags().DurationVar(&f.renew, "renew-interval", controlplane.DefaultRenewInterval, "how often the lease holder renews (under --lease-duration)")
	cmd.Flags().StringVar(&f.clusterCIDR, "cluster-cidr", api.DefaultClusterCIDR, "IPv4 range each node's pod CIDR (a /24) is cut from; give every server of a cluster the same")
	cmd.Flags().StringVar(&f.serviceCIDR, "service-cidr", api.DefaultServiceCIDR, "IPv4 range Service cluster IPs are allocated from (its .1 and .10 only on request: the kubernetes Service, the cluster DNS)")
	cmd.Flags().StringVar(&f.nodePorts, "service-node-port-range", api.DefaultNodePortRange, "range NodePorts are allocated from, LOW-HIGH")
	cmd.Flags().StringVar(&f.http, "http", "127.0.0.1:8080", "HOST:PORT of the web dashboard (HTTPS unless loopback, as --tls says); empty for none")
	cmd.Flags().StringVar(&f.restore, "restore", "", "restore a backup file (kyb backup) into the data directory before starting; refused over existing data unless --restore-force")
	cmd.Flags().BoolVar(&f.restoreForce, "restore-force", false, "with --restore: replace the data already in the data directory")
	cmd.Flags().BoolVar(&f.rotateSecretsKey, "rotate-secrets-key", false, "on start, make a new key for the encryption of Secrets at rest, re-encrypt every Secret with it and retire the old key")
	f.metrics.register(cmd, defaultServerMetrics)
}

// start checks the flags, tunes the garbage collector for a long-running
// control plane and starts one.
func (f *serverFlags) start(ctx context.Context, g *globals) (*controlplane.ControlPlane, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	if _, err := f.metrics.options(); err != nil {
		return nil, err
	}
	tuneGC()
	controlplane.Version = Version
	cp, err := controlplane.Start(ctx, cfg, g.log)
	if err != nil {
		return nil, err
	}
	if err := f.writeAdmin(cp, g); err != nil {
		_ = cp.Shutdown()
		return nil, err
	}
	if err := f.metrics.serve(ctx, g.log); err != nil {
		_ = cp.Shutdown()
		return nil, err
	}
	return cp, nil
}

// adminConfigPath is the admin's kyb config under the data dir.
func (f *serverFlags) adminConfigPath() string { return filepath.Join(f.dataDir, "kyb.config") }

// writeAdmin writes, on first start, <data-dir>/admin.creds (the admin
// user's NATS credentials, which `nats --creds` takes too) and, on every
// start, <data-dir>/kyb.config naming them, the CA and this server's URL;
// and ~/.kyb/config the same when there is none or it was written for this
// data dir before, so that `kyb` finds the cluster with no flags.
func (f *serverFlags) writeAdmin(cp *controlplane.ControlPlane, g *globals) error {
	creds := filepath.Join(f.dataDir, "admin.creds")
	if _, err := os.Stat(creds); errors.Is(err, os.ErrNotExist) {
		b, err := cp.Authority().AdminCreds()
		if err != nil {
			return fmt.Errorf("admin credentials: %w", err)
		}
		if err := os.WriteFile(creds, b, 0o600); err != nil {
			return fmt.Errorf("write admin credentials: %w", err)
		}
	}
	cfg := client.Config{Server: cp.ClientURL(), Creds: creds}
	// A clustered server's config names every server, so the client
	// reaches the control plane while any one of them is up.
	for _, u := range cp.ServerURLs() {
		if u != cfg.Server {
			cfg.Servers = append(cfg.Servers, u)
		}
	}
	if cp.TLS() {
		cfg.CA = cp.Authority().CAPath()
	}
	header := adminHeader + f.dataDir
	if err := client.WriteConfig(f.adminConfigPath(), header, cfg); err != nil {
		return err
	}
	home := client.DefaultConfigPath()
	old, err := os.ReadFile(home)
	if errors.Is(err, os.ErrNotExist) || (err == nil && strings.HasPrefix(string(old), "# "+header+"\n")) {
		if err := client.WriteConfig(home, header, cfg); err != nil {
			g.log.Warn("could not write the default kyb config", "path", home, "err", err)
		}
	}
	return nil
}

const adminHeader = "admin config written by kyb for the cluster in "

func (f *serverFlags) config() (controlplane.Config, error) {
	if _, _, err := controlplane.ParseSync(f.sync); err != nil {
		return controlplane.Config{}, fmt.Errorf("--sync: %w", err)
	}
	if err := controlplane.CheckLease(f.leaseDuration, f.renew); err != nil {
		return controlplane.Config{}, fmt.Errorf("--lease-duration, --renew-interval: %w", err)
	}
	if f.join != "" && f.joinToken == "" {
		return controlplane.Config{}, fmt.Errorf("--join: needs --token (the server token: `kyb server token` on a server of the cluster)")
	}
	cfg := controlplane.Config{DataDir: filepath.Join(f.dataDir, "server"), Listen: f.listen, Sync: f.sync, TLS: f.tls, TLSNames: f.tlsNames,
		LeaseDuration: f.leaseDuration, RenewInterval: f.renew, HTTP: f.http, Restore: f.restore, RestoreForce: f.restoreForce,
		RotateSecretsKey: f.rotateSecretsKey,
		Name:             f.name, ClusterListen: f.clusterListen, Peers: f.peers, Join: f.join, JoinToken: f.joinToken, Replicas: f.replicas}
	if f.restoreForce && f.restore == "" {
		return controlplane.Config{}, errors.New("--restore-force: only with --restore FILE")
	}
	if _, err := api.ClusterDNSIP(f.serviceCIDR); err != nil {
		return controlplane.Config{}, fmt.Errorf("--service-cidr: %w", err)
	}
	if err := api.CheckCIDRsDisjoint(f.clusterCIDR, f.serviceCIDR); err != nil {
		return controlplane.Config{}, fmt.Errorf("--cluster-cidr: %w", err)
	}
	cfg.APIServer.ServiceCIDR, cfg.APIServer.NodePortRange = f.serviceCIDR, f.nodePorts
	cfg.APIServer.ClusterCIDR = f.clusterCIDR
	if f.spread {
		cfg.Scheduler.Strategy = scheduler.Spread
	}
	return cfg, nil
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kyb"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kyb")
	}
	return filepath.Join(os.TempDir(), "kyb")
}

func newServerCmd(g *globals) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: embedded NATS with JetStream, the API, the scheduler and the controllers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cp, err := sf.start(cmd.Context(), g)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "kyb server listening on %s (data in %s, sync %s)\nadmin config: %s\njoin a node: kyb token create, then kyb agent --server %s --token <token>\n",
				cp.ClientURL(), sf.dataDir, sf.sync, sf.adminConfigPath(), cp.ClientURL())
			if u := cp.DashboardURL(); u != "" {
				fmt.Fprintf(g.streams.Out, "dashboard: %s (sign in with a user's .creds file: kyb user create NAME; the admin's is %s)\n", u, filepath.Join(sf.dataDir, "admin.creds"))
			}
			if sf.clusterListen != "" {
				fmt.Fprintf(g.streams.Out, "cluster: routes on %s; add a server: kyb server --cluster-listen H:P --join %s --token \"$(kyb server token --data-dir %s)\"\n",
					sf.clusterListen, cp.ClientURL(), sf.dataDir)
			}
			select {
			case <-cmd.Context().Done():
			case <-cp.Done():
			}
			return cp.Shutdown()
		},
	}
	sf.register(cmd, defaultDataDir())
	sf.registerCluster(cmd)
	cmd.AddCommand(serverRemoveCmd(g), serverTokenCmd(g))
	return cmd
}
