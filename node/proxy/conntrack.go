package proxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ctnetlink constants (linux/netfilter/nfnetlink_conntrack.h).
const (
	nfnlSubsysCtnetlink = 1
	ctMsgGet            = 1
	ctMsgDelete         = 2
	ctaTupleOrig        = 1
	ctaTupleReply       = 2
	ctaTupleIP          = 1
	ctaTupleProto       = 2
	ctaIPv4Src          = 1
	ctaProtoNum         = 1
	ctaProtoSrcPort     = 2
)

// udpEndpoint is a UDP endpoint that left a service port.
type udpEndpoint struct {
	ip   netip.Addr
	port uint16
}

// flushUDP deletes the conntrack entries of UDP flows DNATed to endpoints
// that left (their reply comes from the endpoint), as kube-proxy does with
// `conntrack -D`: UDP has no connection to end, so without this a client
// that keeps sending within the entry's timeout stays on a removed
// endpoint. TCP connections are left alone: they end on their own.
func flushUDP(netnsFd int, gone []udpEndpoint) (int, error) {
	if len(gone) == 0 {
		return 0, nil
	}
	cfg := &netlink.Config{}
	if netnsFd >= 0 {
		cfg.NetNS = netnsFd
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return 0, fmt.Errorf("conntrack: %w", err)
	}
	defer c.Close()
	nfgen := []byte{unix.AF_INET, 0, 0, 0}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysCtnetlink<<8 | ctMsgGet), Flags: netlink.Request | netlink.Dump},
		Data:   nfgen,
	})
	if err != nil {
		return 0, fmt.Errorf("conntrack: list: %w", err)
	}
	deleted := 0
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		orig, src, proto, ok := parseCT(m.Data[4:])
		if !ok || proto != unix.IPPROTO_UDP || !containsEndpoint(gone, src) {
			continue
		}
		ae := netlink.NewAttributeEncoder()
		ae.Bytes(ctaTupleOrig|unix.NLA_F_NESTED, orig)
		data, err := ae.Encode()
		if err != nil {
			continue
		}
		if _, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysCtnetlink<<8 | ctMsgDelete), Flags: netlink.Request | netlink.Acknowledge},
			Data:   append(append([]byte{}, nfgen...), data...),
		}); err == nil {
			deleted++
		}
	}
	return deleted, nil
}

func containsEndpoint(gone []udpEndpoint, e udpEndpoint) bool {
	for _, g := range gone {
		if g == e {
			return true
		}
	}
	return false
}

// parseCT returns an entry's original tuple (raw, to name it in a delete),
// its reply tuple's source and the protocol.
func parseCT(b []byte) (orig []byte, replySrc udpEndpoint, proto uint8, ok bool) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, udpEndpoint{}, 0, false
	}
	for ad.Next() {
		switch ad.Type() & ^uint16(unix.NLA_F_NESTED) {
		case ctaTupleOrig:
			orig = ad.Bytes()
		case ctaTupleReply:
			replySrc, proto = parseTuple(ad.Bytes())
		}
	}
	return orig, replySrc, proto, ad.Err() == nil && orig != nil && replySrc.ip.IsValid()
}

// parseTuple returns a tuple's source address and port and its protocol.
func parseTuple(b []byte) (src udpEndpoint, proto uint8) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return src, 0
	}
	for ad.Next() {
		switch ad.Type() & ^uint16(unix.NLA_F_NESTED) {
		case ctaTupleIP:
			ip, _ := netlink.NewAttributeDecoder(ad.Bytes())
			for ip != nil && ip.Next() {
				if ip.Type() == ctaIPv4Src {
					if a, ok := netip.AddrFromSlice(ip.Bytes()); ok {
						src.ip = a
					}
				}
			}
		case ctaTupleProto:
			pd, _ := netlink.NewAttributeDecoder(ad.Bytes())
			for pd != nil && pd.Next() {
				switch pd.Type() {
				case ctaProtoNum:
					if v := pd.Bytes(); len(v) == 1 {
						proto = v[0]
					}
				case ctaProtoSrcPort:
					if v := pd.Bytes(); len(v) == 2 {
						src.port = binary.BigEndian.Uint16(v)
					}
				}
			}
		}
	}
	return src, proto
}

// goneUDP lists the UDP backends of prev that next no longer has.
func goneUDP(prev map[string][]backend, next *plan) []udpEndpoint {
	now := map[string]map[backend]bool{}
	for _, sp := range next.ports {
		m := map[backend]bool{}
		for _, b := range sp.backends {
			m[b] = true
		}
		now[sp.name] = m
	}
	var out []udpEndpoint
	for name, bs := range prev {
		for _, b := range bs {
			if !now[name][b] && len(name) > 4 && name[len(name)-4:] == "/udp" {
				out = append(out, udpEndpoint{ip: b.ip, port: b.port})
			}
		}
	}
	return out
}
