package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/kybernetes/kybernetes/node/services"
)

// Config configures a Server.
type Config struct {
	// Addr is the host:port to serve on, UDP and TCP (port 0 picks one,
	// the same for both).
	Addr string
	// Domain is the cluster domain. Default cluster.local.
	Domain string
	// Upstreams are the resolvers ("ip" or "ip:port") names outside the
	// cluster domain are forwarded to, tried in order: the node's
	// resolv.conf nameservers. None: such names get SERVFAIL.
	Upstreams []string
	// ForwardTimeout bounds one forwarded exchange. Default 2s.
	ForwardTimeout time.Duration
}

// Server answers DNS queries from the node's copy of the cluster's
// Services and EndpointSlices.
type Server struct {
	cfg    Config
	domain string // FQDN, lower case
	cache  *services.Cache
	log    *slog.Logger
	ix     atomic.Pointer[index]
	client *dns.Client
	tcp    *dns.Client

	udpSrv, tcpSrv *dns.Server
	addr           string
	wg             sync.WaitGroup
}

// New returns a server answering from cache; Start serves it.
func New(cfg Config, cache *services.Cache, log *slog.Logger) (*Server, error) {
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = 2 * time.Second
	}
	if _, ok := dns.IsDomainName(cfg.Domain); !ok {
		return nil, fmt.Errorf("cluster DNS: domain %q is not a domain name", cfg.Domain)
	}
	ups := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			u = net.JoinHostPort(u, "53")
		}
		ups = append(ups, u)
	}
	cfg.Upstreams = ups
	s := &Server{
		cfg: cfg, domain: strings.ToLower(dns.Fqdn(cfg.Domain)), cache: cache, log: log,
		client: &dns.Client{Net: "udp", Timeout: cfg.ForwardTimeout},
		tcp:    &dns.Client{Net: "tcp", Timeout: cfg.ForwardTimeout},
	}
	s.ix.Store(buildIndex(cache.State(), s.domain))
	return s, nil
}

// Start listens on cfg.Addr and keeps the index current until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	pc, err := net.ListenPacket("udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("cluster DNS: listen udp %s: %w", s.cfg.Addr, err)
	}
	addr := pc.LocalAddr().String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("cluster DNS: listen tcp %s: %w", addr, err)
	}
	s.addr = addr
	h := dns.HandlerFunc(s.ServeDNS)
	s.udpSrv = &dns.Server{PacketConn: pc, Handler: h}
	s.tcpSrv = &dns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second}
	changed := s.cache.Subscribe()
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.serve(s.udpSrv.ActivateAndServe, "udp") }()
	go func() { defer s.wg.Done(); s.serve(s.tcpSrv.ActivateAndServe, "tcp") }()
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				s.udpSrv.Shutdown()
				s.tcpSrv.Shutdown()
				return
			case <-changed:
				s.ix.Store(buildIndex(s.cache.State(), s.domain))
			}
		}
	}()
	s.log.Info("cluster DNS serving", "addr", addr, "domain", s.domain, "upstreams", s.cfg.Upstreams)
	return nil
}

func (s *Server) serve(run func() error, network string) {
	if err := run(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("cluster DNS stopped", "net", network, "err", err)
	}
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string { return s.addr }

// Wait returns when the server has stopped (its context ended).
func (s *Server) Wait() { s.wg.Wait() }

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNotImplemented)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	ix := s.ix.Load()
	if q.Qclass == dns.ClassINET && (dns.IsSubDomain(s.domain, name) || ix.rrs[key{name, dns.TypePTR}] != nil && q.Qtype == dns.TypePTR) {
		s.answer(w, req, ix, name, q.Qtype)
		return
	}
	s.forward(w, req)
}

// answer answers a question of the cluster domain from the index.
func (s *Server) answer(w dns.ResponseWriter, req *dns.Msg, ix *index, name string, qtype uint16) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	rrs := ix.rrs[key{name, qtype}]
	if len(rrs) == 0 && qtype != dns.TypeCNAME {
		rrs = ix.rrs[key{name, dns.TypeCNAME}] // an ExternalName answers every type
	}
	switch {
	case len(rrs) > 0:
		m.Answer = make([]dns.RR, len(rrs))
		for i, rr := range rrs {
			m.Answer[i] = dns.Copy(rr)
			m.Answer[i].Header().Name = req.Question[0].Name // the asker's case
		}
		if qtype == dns.TypeSRV {
			m.Extra = s.targets(ix, rrs)
		}
	case ix.names[name]:
		m.Ns = []dns.RR{s.soa()} // NODATA
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
	}
	// A UDP answer too big for the client's buffer is truncated; it asks
	// again over TCP.
	size := dns.MinMsgSize
	if o := req.IsEdns0(); o != nil {
		size = int(o.UDPSize())
	}
	if w.LocalAddr().Network() == "udp" {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// targets are the A records of the SRV records' targets.
func (s *Server) targets(ix *index, srvs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range srvs {
		t := rr.(*dns.SRV).Target
		if seen[t] {
			continue
		}
		seen[t] = true
		for _, a := range ix.rrs[key{t, dns.TypeA}] {
			out = append(out, dns.Copy(a))
		}
	}
	return out
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: s.domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns: "ns.dns." + s.domain, Mbox: "hostmaster." + s.domain, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: TTL}
}

// forward sends a query outside the cluster domain to the upstreams in
// turn over UDP, and over TCP again when the answer comes back truncated
// (to a TCP client, which can take it whole).
func (s *Server) forward(w dns.ResponseWriter, req *dns.Msg) {
	for _, up := range s.cfg.Upstreams {
		resp, _, err := s.client.Exchange(req, up)
		if err == nil && resp.Truncated && w.LocalAddr().Network() == "tcp" {
			if r2, _, err2 := s.tcp.Exchange(req, up); err2 == nil {
				resp = r2
			}
		}
		if err != nil {
			s.log.Debug("cluster DNS: forward", "upstream", up, "name", req.Question[0].Name, "err", err)
			continue
		}
		resp.Id = req.Id
		w.WriteMsg(resp)
		return
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	w.WriteMsg(m)
}
