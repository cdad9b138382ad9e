package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table (family ip) the proxy owns; it is
// replaced whole on every change and deleted by Cleanup.
const TableName = "kyb"

// masqMark is the packet mark bit of connections to masquerade (from
// outside the node through a NodePort, LoadBalancer or external IP, and
// hairpin connections), as kube-proxy's 0x4000.
const masqMark = 0x4000

// nftWriter writes plans to one network namespace's nftables.
type nftWriter struct {
	netnsFd int    // -1: the agent's own namespace
	table   string // the table's name
	// lastFront and lastBackends are what the last successful write
	// wrote: the frontends' signature ("" for none, or after a failure)
	// and each service port's backends.
	lastFront    string
	lastBackends map[string][]backend
	// fulls and updates count the writes of each kind.
	fulls, updates atomic.Int64
}

// sockBuffer is the netlink socket's send and receive buffers: the whole
// table goes in one transaction (one sendmsg, and an acknowledgement per
// message back), which for thousands of Services is far beyond the
// default 208 KiB.
const sockBuffer = 64 << 20

// bigBuffers raises the socket's buffers past net.core.[rw]mem_max
// (SO_SNDBUFFORCE, SO_RCVBUFFORCE: root), else as far as those allow.
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err == nil {
		var serr, rerr error
		if err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuffer)
			rerr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sockBuffer)
		}); err == nil && serr == nil && rerr == nil {
			return nil
		}
	}
	if err := c.SetWriteBuffer(sockBuffer); err != nil {
		return err
	}
	return c.SetReadBuffer(sockBuffer)
}

func (nw *nftWriter) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}
	if nw.netnsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nw.netnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// cleanup deletes the proxy's table, if there is one.
func (nw *nftWriter) cleanup() error {
	c, err := nw.conn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nw.table}
	c.AddTable(t) // so that the delete cannot fail on a missing table
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", nw.table, err)
	}
	return nil
}

// write brings the table to p. When only endpoints changed since the last
// write of this writer (the hot path: readiness), it changes just the
// chains of the service ports whose endpoints changed, in one transaction;
// otherwise (first write, Services or their frontends changed, or a failed
// update) it replaces the whole table in one transaction, so nothing in
// between is ever seen and stale rules of an earlier run go.
func (nw *nftWriter) write(p *plan) error {
	front := frontSignature(p)
	if nw.lastFront != "" && front == nw.lastFront {
		if err := nw.update(p); err == nil {
			nw.updates.Add(1)
			nw.remember(p, front)
			return nil
		}
	}
	nw.lastFront = ""
	if err := nw.full(p); err != nil {
		return err
	}
	nw.fulls.Add(1)
	nw.remember(p, front)
	return nil
}

// remember records what was written.
func (nw *nftWriter) remember(p *plan, front string) {
	nw.lastFront = front
	nw.lastBackends = map[string][]backend{}
	for _, sp := range p.ports {
		nw.lastBackends[sp.name] = sp.backends
	}
}

// frontSignature is everything of p but the backends.
func frontSignature(p *plan) string {
	var b strings.Builder
	for _, sp := range p.ports {
		fmt.Fprintf(&b, "%s|%s|%v|%v|%v|%v;", sp.name, sp.proto, sp.frontends, sp.affinity, sp.externalLocal, sp.internalLocal)
	}
	return b.String()
}

// full replaces the whole table with p's rules.
func (nw *nftWriter) full(p *plan) error {
	c, err := nw.conn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nw.table}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	services := c.AddChain(&nftables.Chain{Name: "services", Table: t})
	accept := nftables.ChainPolicyAccept
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
		prio *nftables.ChainPriority
	}{
		{"nat-prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
		{"nat-output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
	} {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: h.hook, Priority: h.prio, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: services.Name}}})
	}
	post := c.AddChain(&nftables.Chain{Name: "nat-postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(masqMark), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Masq{},
	}})

	// Frontends: ClusterIPs and external IPs first, then the ports of the
	// node's addresses. A port with no backends has an empty chain: its
	// traffic is not steered.
	var local [][]expr.Any
	sets := map[string]*nftables.Set{}
	for _, sp := range p.ports {
		svcChain := c.AddChain(&nftables.Chain{Name: sp.chain(), Table: t})
		var localChain *nftables.Chain
		if sp.externalLocal || sp.internalLocal {
			localChain = c.AddChain(&nftables.Chain{Name: sp.localChain(), Table: t})
		}
		for _, f := range sp.frontends {
			external := f.kind != frontClusterIP
			var ex []expr.Any
			if f.kind == frontClusterIP || f.kind == frontExternalIP {
				ex = append(ex, matchDaddr(f.ip)...)
			} else {
				ex = append(ex, matchLocalDaddr()...)
			}
			ex = append(ex, matchProto(sp.proto)...)
			ex = append(ex, matchDport(f.port)...)
			target := svcChain
			switch {
			case external && sp.externalLocal:
				target = localChain // the client's address is kept: no mark
			case external:
				ex = append(ex, setMark()...)
			case sp.internalLocal:
				target = localChain
			}
			ex = append(ex, &expr.Verdict{Kind: expr.VerdictGoto, Chain: target.Name})
			if f.kind == frontClusterIP || f.kind == frontExternalIP {
				c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: ex})
			} else {
				local = append(local, ex)
			}
		}
		for _, b := range sp.backends {
			addEndpoint(c, t, sp, b, sets)
		}
		addSpread(c, t, svcChain, sp, sp.backends, sets)
		if localChain != nil {
			addLocalSpread(c, t, localChain, sp, sets)
		}
	}
	for _, ex := range local {
		c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: ex})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: write table %s: %w", nw.table, err)
	}
	return nil
}

// update rewrites the chains of the service ports whose backends changed
// since the last write: their spreading chains are flushed and written
// again, the chains (and affinity sets) of endpoints that left are
// deleted, those of new endpoints added. Frontends are unchanged.
func (nw *nftWriter) update(p *plan) error {
	c, err := nw.conn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nw.table}
	changed := 0
	for _, sp := range p.ports {
		old := nw.lastBackends[sp.name]
		if slices.Equal(old, sp.backends) {
			continue
		}
		changed++
		svcChain := &nftables.Chain{Name: sp.chain(), Table: t}
		c.FlushChain(svcChain)
		var localChain *nftables.Chain
		if sp.externalLocal || sp.internalLocal {
			localChain = &nftables.Chain{Name: sp.localChain(), Table: t}
			c.FlushChain(localChain)
		}
		key := func(b backend) string { return sp.epChain(b) }
		now := map[string]bool{}
		for _, b := range sp.backends {
			now[key(b)] = true
		}
		was := map[string]bool{}
		for _, b := range old {
			was[key(b)] = true
			if now[key(b)] {
				continue
			}
			ep := &nftables.Chain{Name: sp.epChain(b), Table: t}
			c.FlushChain(ep)
			c.DelChain(ep)
			if sp.affinity > 0 {
				c.DelSet(&nftables.Set{Table: t, Name: affSet(sp, b)})
			}
		}
		sets := map[string]*nftables.Set{}
		for _, b := range sp.backends {
			if was[key(b)] {
				if sp.affinity > 0 {
					sets[affSet(sp, b)] = &nftables.Set{Table: t, Name: affSet(sp, b)} // committed: found by name
				}
				continue
			}
			addEndpoint(c, t, sp, b, sets)
		}
		addSpread(c, t, svcChain, sp, sp.backends, sets)
		if localChain != nil {
			addLocalSpread(c, t, localChain, sp, sets)
		}
	}
	if changed == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: update table %s: %w", nw.table, err)
	}
	return nil
}

// affSet is the name of an endpoint's affinity set.
func affSet(sp *servicePort, b backend) string { return "aff-" + hash(sp.epChain(b)) }

// addEndpoint adds an endpoint's chain (hairpin mark, affinity update,
// DNAT) and, with affinity, its set (recorded in sets).
func addEndpoint(c *nftables.Conn, t *nftables.Table, sp *servicePort, b backend, sets map[string]*nftables.Set) {
	var set *nftables.Set
	if sp.affinity > 0 {
		set = &nftables.Set{Table: t, Name: affSet(sp, b), KeyType: nftables.TypeIPAddr,
			HasTimeout: true, Timeout: sp.affinity, Dynamic: true}
		if err := c.AddSet(set, nil); err != nil {
			set = nil
		} else {
			sets[set.Name] = set
		}
	}
	ep := c.AddChain(&nftables.Chain{Name: sp.epChain(b), Table: t})
	// Hairpin: a pod reaching itself through the Service is masqueraded,
	// or its reply would not pass the NAT back.
	hair := append([]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b.ip.AsSlice()}}, setMark()...)
	c.AddRule(&nftables.Rule{Table: t, Chain: ep, Exprs: hair})
	if set != nil {
		c.AddRule(&nftables.Rule{Table: t, Chain: ep, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Dynset{SrcRegKey: 1, SetName: set.Name, SetID: set.ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: sp.affinity},
		}})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ep, Exprs: []expr.Any{
		&expr.Immediate{Register: 1, Data: b.ip.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(b.port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}})
}

// addSpread writes a spreading chain over backends (whose endpoint chains
// exist): a client with affinity back to its endpoint, then rule i of n
// taking a connection with probability 1/(n-i), which gives each backend
// 1/n in all.
func addSpread(c *nftables.Conn, t *nftables.Table, ch *nftables.Chain, sp *servicePort, backends []backend, sets map[string]*nftables.Set) {
	if sp.affinity > 0 {
		for _, b := range backends {
			set := sets[affSet(sp, b)]
			if set == nil {
				continue
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
				&expr.Verdict{Kind: expr.VerdictGoto, Chain: sp.epChain(b)},
			}})
		}
	}
	n := len(backends)
	for i, b := range backends {
		var ex []expr.Any
		if left := n - i; left > 1 {
			ex = append(ex,
				&expr.Numgen{Register: 1, Modulus: uint32(left), Type: unix.NFT_NG_RANDOM},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)})
		}
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictGoto, Chain: sp.epChain(b)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
	}
}

// addLocalSpread writes the chain of a Local traffic policy: this node's
// backends only, or a drop when it has none (as Kubernetes does).
func addLocalSpread(c *nftables.Conn, t *nftables.Table, ch *nftables.Chain, sp *servicePort, sets map[string]*nftables.Set) {
	if lb := sp.local(); len(lb) > 0 {
		addSpread(c, t, ch, sp, lb, sets)
		return
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}})
}

func matchDaddr(ip netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip.AsSlice()},
	}
}

// matchLocalDaddr matches a destination that is one of the node's own
// addresses but not loopback (a DNAT from 127/8 would need route_localnet,
// which exposes loopback services; kube-proxy's nftables mode refuses it
// too).
func matchLocalDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{127, 0, 0, 0}},
	}
}

func matchProto(proto string) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func matchDport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// setMark sets masqMark on the packet.
func setMark() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^uint32(masqMark)), Xor: binaryutil.NativeEndian.PutUint32(masqMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}
