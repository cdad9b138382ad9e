package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table (family ip) the proxy owns; the first
// write of an agent replaces it whole, Cleanup deletes it.
const TableName = "kyb"

// masqMark is the packet mark bit of connections to masquerade (from
// outside the node through a NodePort, LoadBalancer or external IP, and
// hairpin connections), as kube-proxy's 0x4000.
const masqMark = 0x4000

// nftWriter writes plans to one network namespace's nftables.
type nftWriter struct {
	netnsFd int    // -1: the agent's own namespace
	table   string // the table's name
	// last is what the last successful write wrote, by port name (nil
	// before the first and after a failure); lastBackends the ports'
	// backends.
	last         map[string]*servicePort
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

// Names of the table's maps and fixed chains.
const (
	mapServiceIPs   = "service-ips"       // daddr . l4proto . dport : goto a port's chain
	mapServiceLocal = "service-nodeports" // l4proto . dport on the node's addresses : goto
	chainServices   = "services"
)

// write brings the table to p. The first write of a writer (and any
// write after a failure) replaces the whole table in one transaction, so
// that stale rules of an earlier run go; every later write changes only
// what differs from the last one — map elements of frontends that came or
// went, the chains of service ports that changed, endpoints that came or
// went — also in one transaction: nothing in between is ever seen.
func (nw *nftWriter) write(p *plan) error {
	if nw.last != nil {
		if err := nw.update(p); err == nil {
			nw.updates.Add(1)
			nw.remember(p)
			return nil
		}
	}
	nw.last = nil
	if err := nw.full(p); err != nil {
		return err
	}
	nw.fulls.Add(1)
	nw.remember(p)
	return nil
}

// remember records what was written.
func (nw *nftWriter) remember(p *plan) {
	nw.last = map[string]*servicePort{}
	nw.lastBackends = map[string][]backend{}
	for _, sp := range p.ports {
		nw.last[sp.name] = sp
		nw.lastBackends[sp.name] = sp.backends
	}
}

// The chains of a service port: svc- spreads over all its endpoints,
// svl- over this node's (Local traffic policies), sve- takes traffic from
// outside (NodePort, LoadBalancer, external IPs).
func (sp *servicePort) extChain() string { return "sve-" + hash(sp.name) }

// mapKeys are a port's frontends as keys of the two maps, with the chain
// each goes to.
func (sp *servicePort) mapKeys() (ips, local []nftables.SetElement) {
	proto := []byte{unix.IPPROTO_TCP, 0, 0, 0}
	if sp.proto == "udp" {
		proto[0] = unix.IPPROTO_UDP
	}
	port := func(p uint16) []byte { return append(binaryutil.BigEndian.PutUint16(p), 0, 0) }
	for _, f := range sp.frontends {
		target := sp.chain()
		switch {
		case f.kind != frontClusterIP:
			target = sp.extChain()
		case sp.internalLocal:
			target = sp.localChain()
		}
		v := &expr.Verdict{Kind: expr.VerdictGoto, Chain: target}
		if f.kind == frontClusterIP || f.kind == frontExternalIP {
			key := append(append(append([]byte{}, f.ip.AsSlice()...), proto...), port(f.port)...)
			ips = append(ips, nftables.SetElement{Key: key, VerdictData: v})
		} else {
			key := append(append([]byte{}, proto...), port(f.port)...)
			local = append(local, nftables.SetElement{Key: key, VerdictData: v})
		}
	}
	return ips, local
}

// maps returns the table's two maps (for use in a transaction).
func (nw *nftWriter) maps(t *nftables.Table) (ips, local *nftables.Set) {
	ips = &nftables.Set{Table: t, Name: mapServiceIPs, IsMap: true, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService), DataType: nftables.TypeVerdict}
	local = &nftables.Set{Table: t, Name: mapServiceLocal, IsMap: true, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService), DataType: nftables.TypeVerdict}
	return ips, local
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
	ips, local := nw.maps(t)
	if err := c.AddSet(ips, nil); err != nil {
		return fmt.Errorf("nftables: map %s: %w", ips.Name, err)
	}
	if err := c.AddSet(local, nil); err != nil {
		return fmt.Errorf("nftables: map %s: %w", local.Name, err)
	}
	// The ports' chains first: map elements and rules may only name
	// chains that exist.
	sets := map[string]*nftables.Set{}
	var ipElems, localElems []nftables.SetElement
	seen := map[string]bool{}
	for _, sp := range p.ports {
		addPortChains(c, t, sp, sp.backends, sets)
		pi, pl := sp.mapKeys()
		ipElems = append(ipElems, uniqueKeys(pi, seen, "ip")...)
		localElems = append(localElems, uniqueKeys(pl, seen, "local")...)
	}
	if err := inChunks(c.SetAddElements, ips, ipElems); err != nil {
		return fmt.Errorf("nftables: map %s: %w", ips.Name, err)
	}
	if err := inChunks(c.SetAddElements, local, localElems); err != nil {
		return fmt.Errorf("nftables: map %s: %w", local.Name, err)
	}
	services := c.AddChain(&nftables.Chain{Name: chainServices, Table: t})
	c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: ips.Name, SetID: ips.ID, DestRegister: 0, IsDestRegSet: true},
	}})
	c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: append(matchLocalDaddr(),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: local.Name, SetID: local.ID, DestRegister: 0, IsDestRegSet: true},
	)})
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
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: write table %s: %w", nw.table, err)
	}
	return nil
}

// elemChunk is how many map elements go in one netlink message: a
// message's element list is one attribute, whose length is 16 bits.
const elemChunk = 256

// inChunks calls op with elems elemChunk at a time (none: no call).
func inChunks(op func(*nftables.Set, []nftables.SetElement) error, s *nftables.Set, elems []nftables.SetElement) error {
	for len(elems) > 0 {
		n := min(len(elems), elemChunk)
		if err := op(s, elems[:n]); err != nil {
			return err
		}
		elems = elems[n:]
	}
	return nil
}

// uniqueKeys drops the elements whose key an earlier port took (two
// Services on one NodePort or LoadBalancer port: the first, in name order,
// keeps it).
func uniqueKeys(elems []nftables.SetElement, seen map[string]bool, m string) []nftables.SetElement {
	out := elems[:0]
	for _, e := range elems {
		k := m + string(e.Key)
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// addPortChains adds a port's chains: its endpoints' (and their affinity
// sets, recorded in sets), then svc-, svl- and sve-.
func addPortChains(c *nftables.Conn, t *nftables.Table, sp *servicePort, newEps []backend, sets map[string]*nftables.Set) {
	for _, b := range newEps {
		addEndpoint(c, t, sp, b, sets)
	}
	svc := c.AddChain(&nftables.Chain{Name: sp.chain(), Table: t})
	svl := c.AddChain(&nftables.Chain{Name: sp.localChain(), Table: t})
	sve := c.AddChain(&nftables.Chain{Name: sp.extChain(), Table: t})
	writePortRules(c, t, sp, svc, svl, sve, sets)
}

// writePortRules writes the rules of a port's svc-, svl- and sve- chains
// (which exist and are empty).
func writePortRules(c *nftables.Conn, t *nftables.Table, sp *servicePort, svc, svl, sve *nftables.Chain, sets map[string]*nftables.Set) {
	addSpread(c, t, svc, sp, sp.backends, sets)
	addLocalSpread(c, t, svl, sp, sets)
	if sp.externalLocal {
		// The client's address is kept: no mark.
		c.AddRule(&nftables.Rule{Table: t, Chain: sve, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: svl.Name}}})
	} else {
		c.AddRule(&nftables.Rule{Table: t, Chain: sve, Exprs: append(setMark(), &expr.Verdict{Kind: expr.VerdictGoto, Chain: svc.Name})})
	}
}

// update changes the table from the last write to p, in one transaction.
func (nw *nftWriter) update(p *plan) error {
	c, err := nw.conn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nw.table}
	ips, local := nw.maps(t)
	next := map[string]*servicePort{}
	for _, sp := range p.ports {
		next[sp.name] = sp
	}
	changes := 0
	// Frontends: the elements of the ports that went or changed go first,
	// then those of the ports that came or changed (in name order, the
	// first of two ports with one key keeps it).
	var delIPs, delLocal []nftables.SetElement
	for name, old := range nw.last {
		if sp := next[name]; sp == nil || !sameFront(old, sp) {
			oi, ol := old.mapKeys()
			delIPs, delLocal = append(delIPs, oi...), append(delLocal, ol...)
		}
	}
	if len(delIPs)+len(delLocal) > 0 {
		changes++
		seen := map[string]bool{}
		if err := inChunks(c.SetDeleteElements, ips, uniqueKeys(delIPs, seen, "ip")); err != nil {
			return err
		}
		if err := inChunks(c.SetDeleteElements, local, uniqueKeys(delLocal, seen, "local")); err != nil {
			return err
		}
	}
	// Ports that went: their chains and sets.
	for name, old := range nw.last {
		if next[name] != nil {
			continue
		}
		changes++
		for _, ch := range []string{old.chain(), old.localChain(), old.extChain()} {
			c.FlushChain(&nftables.Chain{Name: ch, Table: t})
		}
		for _, b := range old.backends {
			dropEndpoint(c, t, old, b)
		}
		for _, ch := range []string{old.chain(), old.localChain(), old.extChain()} {
			c.DelChain(&nftables.Chain{Name: ch, Table: t})
		}
	}
	var addIPs, addLocal []nftables.SetElement
	for _, sp := range p.ports {
		old := nw.last[sp.name]
		sets := map[string]*nftables.Set{}
		switch {
		case old == nil:
			changes++
			addPortChains(c, t, sp, sp.backends, sets)
		case !sameFront(old, sp) || !slices.Equal(old.backends, sp.backends):
			changes++
			svc := &nftables.Chain{Name: sp.chain(), Table: t}
			svl := &nftables.Chain{Name: sp.localChain(), Table: t}
			sve := &nftables.Chain{Name: sp.extChain(), Table: t}
			for _, ch := range []*nftables.Chain{svc, svl, sve} {
				c.FlushChain(ch)
			}
			// Endpoints: those that went are dropped, those that came
			// added; with another affinity every endpoint is made anew
			// (its set's name holds the timeout).
			keep := map[backend]bool{}
			if old.affinity == sp.affinity {
				for _, b := range old.backends {
					keep[b] = true
				}
			}
			now := map[backend]bool{}
			for _, b := range sp.backends {
				now[b] = true
			}
			for _, b := range old.backends {
				if !now[b] || !keep[b] {
					dropEndpoint(c, t, old, b)
				}
			}
			for _, b := range sp.backends {
				if keep[b] {
					if sp.affinity > 0 {
						sets[affSet(sp, b)] = &nftables.Set{Table: t, Name: affSet(sp, b)} // committed: found by name
					}
					continue
				}
				addEndpoint(c, t, sp, b, sets)
			}
			writePortRules(c, t, sp, svc, svl, sve, sets)
		}
		if old == nil || !sameFront(old, sp) {
			pi, pl := sp.mapKeys()
			addIPs, addLocal = append(addIPs, pi...), append(addLocal, pl...)
		}
	}
	if len(addIPs)+len(addLocal) > 0 {
		// Keys still held by unchanged ports stay theirs.
		seen := map[string]bool{}
		for name, old := range nw.last {
			if sp := next[name]; sp != nil && sameFront(old, sp) {
				oi, ol := old.mapKeys()
				uniqueKeys(oi, seen, "ip")
				uniqueKeys(ol, seen, "local")
			}
		}
		if err := inChunks(c.SetAddElements, ips, uniqueKeys(addIPs, seen, "ip")); err != nil {
			return err
		}
		if err := inChunks(c.SetAddElements, local, uniqueKeys(addLocal, seen, "local")); err != nil {
			return err
		}
	}
	if changes == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: update table %s: %w", nw.table, err)
	}
	return nil
}

// sameFront reports whether two versions of a port have the same
// frontends, protocol, affinity and traffic policies.
func sameFront(a, b *servicePort) bool {
	return a.proto == b.proto && slices.Equal(a.frontends, b.frontends) && a.affinity == b.affinity &&
		a.externalLocal == b.externalLocal && a.internalLocal == b.internalLocal
}

// dropEndpoint deletes an endpoint's chain and affinity set.
func dropEndpoint(c *nftables.Conn, t *nftables.Table, sp *servicePort, b backend) {
	ep := &nftables.Chain{Name: sp.epChain(b), Table: t}
	c.FlushChain(ep)
	c.DelChain(ep)
	if sp.affinity > 0 {
		c.DelSet(&nftables.Set{Table: t, Name: affSet(sp, b)})
	}
}

// affSet is the name of an endpoint's affinity set (with the timeout: a
// new timeout is a new set).
func affSet(sp *servicePort, b backend) string {
	return "aff-" + hash(fmt.Sprintf("%s/%v", sp.epChain(b), sp.affinity))
}

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
// 1/n in all. No backends: no rules (the traffic is not steered).
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
