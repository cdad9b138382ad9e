package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/node/services"
)

// Config configures a Proxy.
type Config struct {
	// NodeName and NodeIP are this node's; NodeIP is where the wasm
	// gateway listens (the address other nodes' rules send wasm traffic
	// to). Without NodeIP or Locator there is no gateway.
	NodeName string
	NodeIP   netip.Addr
	// Locator finds the node's wasm pods for the gateway.
	Locator WasmLocator
	// SkipIPs are service IPs the node serves itself (the cluster DNS
	// IP, bound to the node): no rules steer them.
	SkipIPs []netip.Addr
	// NetNS is the path of the network namespace whose nftables the proxy
	// writes ("" for the agent's own); tests use one of their own.
	NetNS string
	// Table is the nftables table (family ip) of the rules; TableName when
	// empty (tests use one of their own).
	Table string
	// Listen opens the gateway's listeners; net.Listen when nil.
	Listen func(network, addr string) (net.Listener, error)
}

// Proxy keeps the node's rules and wasm gateway in step with the cache.
type Proxy struct {
	cfg     Config
	cache   *services.Cache
	log     *slog.Logger
	nft     *nftWriter
	gw      *Gateway
	applied atomic.Uint64 // how many times the rules were written
}

// New returns a proxy of cfg fed by cache.
func New(cfg Config, cache *services.Cache, log *slog.Logger) *Proxy {
	if cfg.Table == "" {
		cfg.Table = TableName
	}
	p := &Proxy{cfg: cfg, cache: cache, log: log, nft: &nftWriter{netnsFd: -1, table: cfg.Table}}
	if cfg.Locator != nil && cfg.NodeIP.IsValid() {
		p.gw = NewGateway(cfg.NodeName, cfg.NodeIP, cfg.Locator, log)
		if cfg.Listen != nil {
			p.gw.listenFn = cfg.Listen
		}
	}
	return p
}

// Gateway is the proxy's wasm gateway, nil without one.
func (p *Proxy) Gateway() *Gateway { return p.gw }

// Applied counts the rule sets written so far.
func (p *Proxy) Applied() uint64 { return p.applied.Load() }

// Run writes the rules once the cache holds a full list, and again after
// every change, until ctx ends. Until then the rules of an earlier run stay
// in force (connections keep flowing while an agent restarts); the first
// write replaces them whole, dropping what is stale. The rules stay when
// Run returns; Cleanup removes them.
func (p *Proxy) Run(ctx context.Context) error {
	if p.cfg.NetNS != "" {
		f, err := os.Open(p.cfg.NetNS)
		if err != nil {
			return fmt.Errorf("proxy: open network namespace: %w", err)
		}
		defer f.Close()
		p.nft.netnsFd = int(f.Fd())
	}
	if p.gw != nil {
		defer p.gw.Close()
	}
	changed := p.cache.Subscribe()
	fails := 0
	var retryC <-chan time.Time
	for {
		if st := p.cache.State(); st.Synced {
			if err := p.sync(st); err != nil {
				d := retry.DefaultWatch.Jittered(fails)
				fails++
				p.log.Error("proxy: write rules; retrying", "err", err, "in", d)
				retryC = time.After(d)
			} else {
				fails, retryC = 0, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retryC:
		}
	}
}

func (p *Proxy) sync(st *services.State) error {
	t0 := time.Now()
	pl := makePlan(st, planOptions{Skip: p.cfg.SkipIPs, Node: p.cfg.NodeName})
	prev := p.nft.lastBackends
	if err := p.nft.write(pl); err != nil {
		return err
	}
	if gone := goneUDP(prev, pl); len(gone) > 0 {
		n, err := flushUDP(p.nft.netnsFd, gone)
		if err != nil {
			p.log.Warn("proxy: flush the UDP flows of removed endpoints", "err", err)
		} else {
			p.log.Debug("proxy: UDP flows of removed endpoints flushed", "endpoints", len(gone), "flows", n)
		}
	}
	if p.gw != nil {
		p.gw.update(st)
	}
	p.applied.Add(1)
	p.log.Debug("proxy: rules written", "servicePorts", len(pl.ports), "took", time.Since(t0))
	return nil
}

// Cleanup removes the proxy's rules (table, "" for TableName) from the
// network namespace at netns ("" for the caller's own).
func Cleanup(netns, table string) error {
	if table == "" {
		table = TableName
	}
	nw := &nftWriter{netnsFd: -1, table: table}
	if netns != "" {
		f, err := os.Open(netns)
		if err != nil {
			return fmt.Errorf("proxy: open network namespace: %w", err)
		}
		defer f.Close()
		nw.netnsFd = int(f.Fd())
	}
	return nw.cleanup()
}
