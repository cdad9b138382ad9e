package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// ClusterDNSAuto is the --cluster-dns (Config.ClusterDNS before
// ResolveClusterDNS) that takes the cluster DNS IP from the servers: the
// tenth address of their --service-cidr (api.ClusterDNSIP).
const ClusterDNSAuto = "auto"

// ClusterFile is the file, in the agent's data dir, that keeps the last
// NodeClusterConfig the servers gave, so that a restarted agent serves its
// pods' DNS while no server answers.
const ClusterFile = "cluster.json"

// clusterRequestTimeout bounds one request of the cluster configuration.
const clusterRequestTimeout = 5 * time.Second

// ResolveClusterDNS returns the cluster DNS IP the agent node must use
// (Config.ClusterDNS) for the --cluster-dns value want:
//   - "": "" (pods get the node's resolv.conf; no DNS is served);
//   - ClusterDNSAuto: the servers' (NodeClusterConfig.ClusterDNS);
//   - an IPv4 address: itself when it lies in the servers' service CIDR;
//     outside it, an error naming --cluster-dns and --service-cidr (pods
//     would ask an address no Service can have).
//
// The configuration is asked of the servers on kyb.node.<nodeName>.cluster
// and kept in dataDir; while no server answers, the kept one is used, and
// without one the request is retried until ctx ends.
func ResolveClusterDNS(ctx context.Context, nc *nats.Conn, nodeName, dataDir, want string, log *slog.Logger) (string, error) {
	if want == "" {
		return "", nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var explicit netip.Addr
	if want != ClusterDNSAuto {
		ip, err := netip.ParseAddr(want)
		if err != nil || !ip.Is4() {
			shown := want
			if len(shown) > 64 {
				shown = shown[:64] + "..."
			}
			return "", fmt.Errorf("--cluster-dns %q: want an IPv4 address, %q (the cluster's) or \"\" (none)", shown, ClusterDNSAuto)
		}
		explicit = ip
	}
	cc, err := clusterConfig(ctx, nc, nodeName, dataDir, log)
	if err != nil {
		return "", err
	}
	cidr, dns, err := checkClusterConfig(cc)
	if err != nil {
		return "", err
	}
	if !explicit.IsValid() {
		return dns.String(), nil
	}
	if !cidr.Contains(explicit) {
		return "", fmt.Errorf("--cluster-dns %s is outside the cluster's service CIDR %s (the servers' --service-cidr): pods would ask an address no Service can have; omit --cluster-dns to use the cluster's %s, or pass --cluster-dns \"\" for none", explicit, cidr, dns)
	}
	if explicit != dns {
		log.Warn("--cluster-dns is not the cluster DNS Service's IP (the tenth address of --service-cidr): a Service may be given it", "cluster-dns", explicit, "service-cidr", cidr, "cluster's", dns)
	}
	return explicit.String(), nil
}

// checkClusterConfig parses a configuration from the servers (or the
// file): an IPv4 service CIDR and a cluster DNS IP inside it.
func checkClusterConfig(cc api.NodeClusterConfig) (netip.Prefix, netip.Addr, error) {
	cidr, err := netip.ParsePrefix(cc.ServiceCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return cidr, netip.Addr{}, fmt.Errorf("the cluster's service CIDR %q: not an IPv4 prefix", cc.ServiceCIDR)
	}
	cidr = cidr.Masked()
	dns, err := netip.ParseAddr(cc.ClusterDNS)
	if err != nil || !cidr.Contains(dns) {
		return cidr, dns, fmt.Errorf("the cluster's DNS IP %q: not an address of its service CIDR %s", cc.ClusterDNS, cidr)
	}
	return cidr, dns, nil
}

// clusterConfig asks the servers for the cluster configuration and keeps
// it in dir; when they do not answer it falls back to the kept one, or
// retries until ctx ends when there is none.
func clusterConfig(ctx context.Context, nc *nats.Conn, nodeName, dir string, log *slog.Logger) (api.NodeClusterConfig, error) {
	path := filepath.Join(dir, ClusterFile)
	wait := retry.NewTimer(retry.DefaultWatch)
	for {
		cc, err := askClusterConfig(ctx, nc, nodeName)
		if err == nil {
			if _, _, err := checkClusterConfig(cc); err != nil {
				return cc, err
			}
			if err := saveClusterConfig(path, cc); err != nil {
				log.Warn("cannot keep the cluster configuration", "err", err)
			}
			return cc, nil
		}
		var st *api.Status
		if errors.As(err, &st) && st.Code < 500 {
			return cc, fmt.Errorf("ask the servers for the service CIDR: %w", err)
		}
		if b, rerr := os.ReadFile(path); rerr == nil {
			var kept api.NodeClusterConfig
			if jerr := json.Unmarshal(b, &kept); jerr == nil {
				log.Warn("no server tells the service CIDR; using the one kept from the last start", "file", path, "service-cidr", kept.ServiceCIDR, "err", err)
				return kept, nil
			}
		}
		d := wait.Next()
		log.Warn("waiting for a server to tell the service CIDR (--cluster-dns auto)", "err", err, "retry-in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return cc, fmt.Errorf("ask the servers for the service CIDR: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// askClusterConfig sends one kyb.node.<nodeName>.cluster request.
func askClusterConfig(ctx context.Context, nc *nats.Conn, nodeName string) (api.NodeClusterConfig, error) {
	var cc api.NodeClusterConfig
	ctx, cancel := context.WithTimeout(ctx, clusterRequestTimeout)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, api.NodeSubject(nodeName, api.NodeVerbCluster), nil)
	if err != nil {
		return cc, err
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
		st := &api.Status{}
		if json.Unmarshal(msg.Data, st) != nil || st.Code == 0 {
			st = &api.Status{Code: 500, Message: msg.Header.Get("Nats-Service-Error")}
		}
		return cc, st
	}
	if err := json.Unmarshal(msg.Data, &cc); err != nil {
		return cc, fmt.Errorf("decode the cluster configuration: %w", err)
	}
	return cc, nil
}

func saveClusterConfig(path string, cc api.NodeClusterConfig) error {
	b, _ := json.Marshal(cc)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
