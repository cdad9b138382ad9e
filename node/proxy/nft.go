package proxy

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
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
	// sets are the affinity sets of the write in progress, by name.
	sets map[string]*nftables.Set
}

func (nw *nftWriter) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
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

// write replaces the proxy's table with p's rules in one transaction:
// nothing in between is ever seen, and stale rules of an earlier run go.
func (nw *nftWriter) write(p *plan) error {
	c, err := nw.conn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nw.table}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	nw.sets = map[string]*nftables.Set{}
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
	// node's addresses. A port with no backends gets no frontend: its
	// traffic is not steered.
	var local [][]expr.Any
	for _, sp := range p.ports {
		if len(sp.backends) == 0 {
			continue
		}
		svcChain := c.AddChain(&nftables.Chain{Name: sp.chain(), Table: t})
		var localChain *nftables.Chain
		if sp.externalLocal || sp.internalLocal {
			// Only this node's endpoints; none: the traffic is dropped,
			// as Kubernetes does.
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
		nw.writeServicePort(c, t, svcChain, sp, sp.backends, true)
		if localChain != nil {
			if lb := sp.local(); len(lb) > 0 {
				nw.writeServicePort(c, t, localChain, sp, lb, false)
			} else {
				c.AddRule(&nftables.Rule{Table: t, Chain: localChain, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}})
			}
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

// writeServicePort writes a port's chain (affinity, then an even spread
// over backends) and, with endpoints, the endpoints' chains and affinity
// sets (once per port: a local chain reuses them).
func (nw *nftWriter) writeServicePort(c *nftables.Conn, t *nftables.Table, svcChain *nftables.Chain, sp *servicePort, backends []backend, endpoints bool) {
	sets := make([]*nftables.Set, len(backends))
	if sp.affinity > 0 {
		for i, b := range backends {
			if !endpoints {
				sets[i] = nw.sets["aff-"+hash(sp.epChain(b))]
				continue
			}
			s := &nftables.Set{Table: t, Name: "aff-" + hash(sp.epChain(b)), KeyType: nftables.TypeIPAddr,
				HasTimeout: true, Timeout: sp.affinity, Dynamic: true}
			if err := c.AddSet(s, nil); err == nil {
				sets[i] = s
				nw.sets[s.Name] = s
			}
		}
	}
	// The endpoints' chains first: rules may only name chains that exist.
	for i, b := range backends {
		if !endpoints {
			break
		}
		ep := c.AddChain(&nftables.Chain{Name: sp.epChain(b), Table: t})
		// Hairpin: a pod reaching itself through the Service is
		// masqueraded, or its reply would not pass the NAT back.
		hair := append([]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b.ip.AsSlice()}}, setMark()...)
		c.AddRule(&nftables.Rule{Table: t, Chain: ep, Exprs: hair})
		if sets[i] != nil {
			c.AddRule(&nftables.Rule{Table: t, Chain: ep, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Dynset{SrcRegKey: 1, SetName: sets[i].Name, SetID: sets[i].ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: sp.affinity},
			}})
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ep, Exprs: []expr.Any{
			&expr.Immediate{Register: 1, Data: b.ip.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(b.port)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}})
	}
	// A client with affinity goes back to its endpoint.
	for i, b := range backends {
		if sets[i] == nil {
			continue
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: svcChain, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: sets[i].Name, SetID: sets[i].ID},
			&expr.Verdict{Kind: expr.VerdictGoto, Chain: sp.epChain(b)},
		}})
	}
	// Rule i of n takes a connection with probability 1/(n-i): each
	// backend gets 1/n in all.
	n := len(backends)
	for i, b := range backends {
		var ex []expr.Any
		if left := n - i; left > 1 {
			ex = append(ex,
				&expr.Numgen{Register: 1, Modulus: uint32(left), Type: unix.NFT_NG_RANDOM},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)})
		}
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictGoto, Chain: sp.epChain(b)})
		c.AddRule(&nftables.Rule{Table: t, Chain: svcChain, Exprs: ex})
	}
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
