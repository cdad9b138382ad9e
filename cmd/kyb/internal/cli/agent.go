package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
)

// agentFlags are the node agent flags shared by `kyb agent` and `kyb up`.
type agentFlags struct {
	name, dataDir      string
	containerdMode     string // auto, off, managed
	containerdAddress  string
	containerdNS       string
	insecureRegistries []string
	token              string
	moduleDirs         []string
	wasmHostIP         string
	wasmHost           string // process or inproc
	maxPods, maxWasm   int64
	wagiMax, wagiNode  int
	clusterDNS         string
	clusterDomain      string
	serviceProxy       bool
	// metrics is registered by `kyb agent` only: under `kyb up` the
	// server's /metrics carries the local agent's families too.
	metrics       metricsFlags
	statsInterval time.Duration
}

func (f *agentFlags) register(cmd *cobra.Command, withDataDir bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "node name (default: the host name up to its first dot)")
	if withDataDir {
		fl.StringVar(&f.token, "token", os.Getenv("KYB_TOKEN"), "join token from `kyb token create` (env KYB_TOKEN); needed only on the first start, the node's credentials are kept in the data dir")
		fl.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "directory for the agent's state, logs and volumes")
		fl.StringSliceVar(&f.moduleDirs, "module-dir", nil, "absolute directory whose .wasm files pods may run as file:// modules (repeatable; none by default)")
		f.metrics.register(cmd, defaultAgentMetrics)
	} else {
		wd, _ := os.Getwd()
		fl.StringSliceVar(&f.moduleDirs, "module-dir", []string{wd}, "absolute directory whose .wasm files pods may run as file:// modules (development mode: the working directory by default)")
	}
	fl.StringVar(&f.containerdMode, "containerd", "auto", "auto: use containerd when its socket answers; managed: start a private containerd under the data dir (needs root and the containerd binary); off")
	fl.StringVar(&f.containerdAddress, "containerd-address", containerd.EnvAddress(), "containerd socket in auto mode ($KYB_CONTAINERD_ADDRESS sets the default)")
	fl.StringSliceVar(&f.insecureRegistries, "insecure-registry", nil, "registry host[:port] to reach over plain HTTP (loopback ones always are)")
	fl.StringVar(&f.wasmHostIP, "wasm-host-ip", "0.0.0.0", "address wasm pods' hostPorts listen on")
	if withDataDir {
		fl.StringVar(&f.wasmHost, "wasm-host", wasmHostProcess, "where wasm pods run: process (a host process that outlives the agent, which adopts it on restart) or inproc (in the agent: an agent restart restarts them)")
	} else {
		fl.StringVar(&f.wasmHost, "wasm-host", wasmHostInproc, "where wasm pods run: inproc (in this process: all in one) or process (a host process that outlives kyb up)")
	}
	fl.Int64Var(&f.maxPods, "max-pods", 110, "container pods this node takes")
	fl.StringVar(&f.containerdNS, "containerd-namespace", containerd.DefaultNamespace, "containerd namespace of this agent's containers and images")
	fl.Int64Var(&f.maxWasm, "max-wasm-pods", 2000, "wasm pods this node takes")
	fl.IntVar(&f.wagiMax, "wagi-max-concurrency", 0, "requests a wasm pod's WAGI handler runs at once unless its kyb.dev/wagi-max-concurrency annotation says otherwise (0: max(8, 2×CPUs)); more wait briefly in a bounded queue, then get 503")
	fl.StringVar(&f.clusterDNS, "cluster-dns", node.ClusterDNSAuto, "the cluster DNS service IP: the node serves DNS on it (bound to the kyb-dns interface) and pods with dnsPolicy ClusterFirst use it; auto: the servers' (the tenth address of their --service-cidr); an explicit IP must lie in the servers' --service-cidr; \"\" gives pods the node's resolv.conf and serves no DNS")
	fl.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fl.BoolVar(&f.serviceProxy, "service-proxy", true, "run the service proxy (nftables table ip kyb, wasm gateway); needs root")
	fl.IntVar(&f.wagiNode, "wagi-max-concurrency-node", 0, "requests all wasm pods of this node run at once (0: max(32, 8×CPUs))")
	fl.DurationVar(&f.statsInterval, "stats-interval", 10*time.Second, "how often pods' usage is sampled and reported (kyb top, the dashboard's plots); negative: never")
}

// check refuses flag values that name no mode, before anything starts,
// and makes --data-dir absolute: the wasm host, which runs in /, is given
// paths beneath it (log files, volumes).
func (f *agentFlags) check() error {
	if f.dataDir != "" {
		abs, err := filepath.Abs(f.dataDir)
		if err != nil {
			return fmt.Errorf("--data-dir %q: %w", f.dataDir, err)
		}
		f.dataDir = abs
	}
	switch f.containerdMode {
	case "auto", "off", "managed":
	default:
		return fmt.Errorf("--containerd %q: want auto, managed or off", f.containerdMode)
	}
	if f.wagiMax < 0 || f.wagiMax > api.MaxWAGIConcurrency || f.wagiNode < 0 {
		return fmt.Errorf("--wagi-max-concurrency %d / --wagi-max-concurrency-node %d: want 0 (default) to %d, and a node cap not below 0", f.wagiMax, f.wagiNode, api.MaxWAGIConcurrency)
	}
	switch f.wasmHost {
	case wasmHostProcess, wasmHostInproc:
	default:
		return fmt.Errorf("--wasm-host %q: want process or inproc", f.wasmHost)
	}
	return nil
}

// agentRuntime builds the node's runtimes and runs the agent until ctx ends.
func runAgent(ctx context.Context, f *agentFlags, nc *nats.Conn, log *slog.Logger) error {
	if err := f.check(); err != nil {
		return err
	}
	dir := filepath.Join(f.dataDir, "agent")
	// The cluster DNS IP comes from (or is checked against) the servers'
	// --service-cidr before anything starts.
	clusterDNS, err := node.ResolveClusterDNS(ctx, nc, f.name, dir, f.clusterDNS, log.With("component", "agent"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	rts := map[string]runtimes.Runtime{}
	if err := f.metrics.serve(ctx, log); err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	// Nodes reach no raw JetStream: kyb:// modules come through the node
	// API, which serves only modules this node's pods reference.
	wr, closeWasm, err := wasmRuntime(ctx, f, dir, node.NewModules(nc, f.name, 0), log.With("runtime", "wasm"))
	if err != nil {
		return fmt.Errorf("agent: wasm runtime: %w", err)
	}
	defer closeWasm()
	rts[api.RuntimeWasm] = wr

	if f.containerdMode != "off" {
		addr := f.containerdAddress
		if f.containerdMode == "managed" {
			stop, sock, err := startManagedContainerd(ctx, filepath.Join(dir, "containerd-daemon"), log)
			if err != nil {
				return fmt.Errorf("agent: --containerd=managed: %w", err)
			}
			defer stop()
			addr = sock
		}
		cr, err := containerd.New(ctx, containerd.Config{
			Address:            addr,
			Namespace:          f.containerdNS,
			StateDir:           filepath.Join(dir, "containerd"),
			InsecureRegistries: f.insecureRegistries,
		}, log.With("runtime", "containerd"))
		if err != nil {
			return fmt.Errorf("agent: containerd runtime: %w", err)
		}
		defer cr.Close()
		ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
		info, err := cr.Info(ictx)
		cancel()
		switch {
		case err == nil:
			log.Info("containerd runtime available", "address", addr, "version", info.Version)
			rts[api.RuntimeContainerd] = cr
		case f.containerdMode == "managed":
			return fmt.Errorf("agent: managed containerd does not answer: %w", err)
		default:
			log.Info("containerd not available; this node runs wasm pods only", "address", addr, "err", err)
		}
	}

	a, err := node.New(node.Config{
		Name:          f.name,
		DataDir:       dir,
		MaxPods:       f.maxPods,
		MaxWasmPods:   f.maxWasm,
		ClusterDNS:    clusterDNS,
		ClusterDomain: f.clusterDomain,
		ServiceProxy:  f.serviceProxy,
		StatsInterval: f.statsInterval,
	}, nc, rts, log.With("component", "agent"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	err = a.Run(ctx)
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// startManagedContainerd starts a private containerd under dir and returns
// a function that stops it, and its socket.
func startManagedContainerd(ctx context.Context, dir string, log *slog.Logger) (func(), string, error) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, "", errors.New("containerd binary not found in PATH (on Debian: apt-get install containerd runc containernetworking-plugins)")
	}
	if os.Geteuid() != 0 {
		return nil, "", errors.New("a managed containerd needs root")
	}
	for _, d := range []string{"root", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, "", err
		}
	}
	sock := filepath.Join(dir, "containerd.sock")
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, "", err
	}
	os.Remove(sock)
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"), "--address", sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start containerd: %w", err)
	}
	log.Info("started managed containerd", "pid", cmd.Process.Pid, "socket", sock, "log", logf.Name())
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return stop, sock, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, "", fmt.Errorf("containerd did not create its socket %s within 15s (see %s)", sock, logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newAgentCmd(g *globals) *cobra.Command {
	var af agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent that joins the cluster at --server and runs the pods bound to it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.server == "" {
				return errors.New("agent: --server (or KYB_SERVER) is required: the control plane's URL")
			}
			if err := af.check(); err != nil {
				return err
			}
			nc, err := connectNode(cmd.Context(), &af, g.server, func() (string, error) { return af.token, nil })
			if err != nil {
				return err
			}
			defer nc.Close()
			return runAgent(cmd.Context(), &af, nc, g.log)
		},
	}
	af.register(cmd, true)
	return cmd
}
