package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

var serviceKind = api.KindOf(&api.Service{})

// serviceRanges are the values Services are given: cluster IPs from a
// CIDR and NodePorts from a range.
type serviceRanges struct {
	cidr       netip.Prefix
	base, size uint32 // the CIDR's first address as a number, its address count
	npLo, npHi int32
}

func parseServiceRanges(cidr, nodePorts string) (serviceRanges, error) {
	var r serviceRanges
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return r, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 28 || p.Bits() < 12 {
		return r, fmt.Errorf("service CIDR %q: must be an IPv4 range between /12 and /28", cidr)
	}
	r.cidr = p
	b := p.Addr().As4()
	r.base = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	r.size = 1 << (32 - p.Bits())
	lo, hi, ok := strings.Cut(nodePorts, "-")
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return r, fmt.Errorf("node port range %q: must be LOW-HIGH within 1-65535", nodePorts)
	}
	r.npLo, r.npHi = int32(l), int32(h)
	return r, nil
}

func (r serviceRanges) addr(off uint32) netip.Addr {
	v := r.base + off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// dynamicIP reports whether offset off of the CIDR may be handed out
// without being asked for: not the network or broadcast address, not .1
// (the kubernetes Service's) nor .10 (the cluster DNS's).
func (r serviceRanges) dynamicIP(off uint32) bool {
	return off != 0 && off != r.size-1 && off != 1 && off != 10
}

func ipKey(ip string) string     { return "ip." + ip }
func nodePortKey(p int32) string { return "nodeport." + strconv.Itoa(int(p)) }
func ownerOf(ns, name string) string {
	return ns + "/" + name
}

// serviceKeys are the allocation keys a stored Service holds.
func serviceKeys(s *api.Service) []string {
	var keys []string
	if s.Spec.NeedsClusterIP() && s.Spec.ClusterIP != "" {
		keys = append(keys, ipKey(s.Spec.ClusterIP))
	}
	if s.Spec.NeedsNodePorts() {
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 && !slices.Contains(keys, nodePortKey(p.NodePort)) {
				keys = append(keys, nodePortKey(p.NodePort))
			}
		}
	}
	return keys
}

// svcAlloc is what the apply of one Service claimed and must release.
type svcAlloc struct {
	owner string
	// claimed are the keys this apply created: released when the Service
	// is not written.
	claimed []string
	// drop are keys the stored Service holds and the applied one no
	// longer uses (a type change, a port removed): released once it is
	// written.
	drop []string
	// autoIP and autoPorts (port indexes) say which values were
	// allocated here rather than asked for: a Service written meanwhile by
	// another apply keeps its own.
	autoIP    bool
	autoPorts []int
}

// allocateServices gives every Service of an apply its cluster IP and
// NodePorts before anything is written: values asked for are checked
// (in the service CIDR, in the NodePort range) and claimed, missing ones
// are allocated; all are written into the documents. When any value
// cannot be had, every claim made here is released and the apply fails
// with one 422 naming each field and the Service holding it: nothing is
// applied. It returns the claims by document index.
func (s *Server) allocateServices(ctx context.Context, docs []applyDoc) (map[int]*svcAlloc, error) {
	out := map[int]*svcAlloc{}
	var causes []api.StatusCause
	var problems []string
	for i, d := range docs {
		svc, ok := d.obj.(*api.Service)
		if !ok {
			continue
		}
		a, cs, err := s.allocateService(ctx, svc)
		if a != nil {
			out[i] = a
		}
		if err != nil {
			s.releaseClaims(out)
			return nil, err
		}
		for _, c := range cs {
			f := c.Field
			if len(docs) > 1 {
				f = fmt.Sprintf("documents[%d].%s", i, f)
			}
			causes = append(causes, api.StatusCause{Field: f, Message: c.Message})
			problems = append(problems, fmt.Sprintf("Service %q: %s: %s", svc.Name, c.Field, c.Message))
		}
	}
	if len(causes) == 0 {
		return out, nil
	}
	s.releaseClaims(out)
	st := &api.Status{Code: 422, Reason: api.ReasonInvalid, Causes: causes,
		Message: strings.Join(problems, "; ") + "; nothing was applied"}
	if len(docs) == 1 {
		st.Kind, st.Name = serviceKind.Name, docs[0].obj.GetObjectMeta().Name
	}
	return nil, st
}

// releaseClaims gives back what allocateServices claimed.
func (s *Server) releaseClaims(allocs map[int]*svcAlloc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer cancel()
	for _, a := range allocs {
		for _, k := range a.claimed {
			if err := s.alloc.Release(ctx, k, a.owner); err != nil {
				s.log.Warn("release allocation (the repair pass will)", "key", k, "err", err)
			}
		}
		a.claimed = nil
	}
}

// allocateService claims what one Service needs beyond what its stored
// version holds. Problems with the values asked for come back as causes.
func (s *Server) allocateService(ctx context.Context, svc *api.Service) (*svcAlloc, []api.StatusCause, error) {
	a := &svcAlloc{owner: ownerOf(svc.Namespace, svc.Name)}
	cur, err := s.st.Get(ctx, serviceKind, svc.Namespace, svc.Name)
	if err != nil && !api.IsNotFound(err) {
		return nil, nil, fmt.Errorf("allocate for service %s/%s: read current: %w", svc.Namespace, svc.Name, err)
	}
	view := svc
	var held []string
	if cur != nil {
		c := cur.(*api.Service)
		view = merge(c, api.DeepCopy(svc)).(*api.Service)
		held = serviceKeys(c)
	}
	var causes []api.StatusCause
	bad := func(field, format string, args ...any) {
		causes = append(causes, api.StatusCause{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	claim := func(key string) (holder string, err error) {
		holder, created, err := s.alloc.Claim(ctx, key, a.owner)
		if created {
			a.claimed = append(a.claimed, key)
		}
		return holder, err
	}
	if view.Spec.NeedsClusterIP() {
		switch ip := view.Spec.ClusterIP; {
		case ip == "":
			got, err := s.allocateIP(ctx, a)
			if err != nil {
				return a, nil, err
			}
			if got == "" {
				bad("spec.clusterIP", "no address is left in the service CIDR %s", s.ranges.cidr)
				break
			}
			a.autoIP = true
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = got, []string{got}
		case slices.Contains(held, ipKey(ip)):
		default:
			addr, perr := netip.ParseAddr(ip)
			if perr != nil || !s.ranges.cidr.Contains(addr) {
				bad("spec.clusterIP", "%s is not in the service CIDR %s", ip, s.ranges.cidr)
				break
			}
			holder, err := claim(ipKey(ip))
			if err != nil {
				return a, nil, err
			}
			if holder != "" {
				bad("spec.clusterIP", "%s is already allocated to Service %s", ip, holder)
			}
		}
	}
	var used []string
	if view.Spec.NeedsNodePorts() {
		for i := range view.Spec.Ports {
			p := &view.Spec.Ports[i]
			field := fmt.Sprintf("spec.ports[%d].nodePort", i)
			switch {
			case p.NodePort == 0:
				// A second port of the same number (TCP and UDP) shares it.
				if j := slices.IndexFunc(view.Spec.Ports[:i], func(q api.ServicePort) bool { return q.Port == p.Port && q.NodePort != 0 }); j >= 0 && view.Spec.Ports[j].Protocol != p.Protocol {
					p.NodePort = view.Spec.Ports[j].NodePort
					svc.Spec.Ports[i].NodePort = p.NodePort
					break
				}
				got, err := s.allocateNodePort(ctx, a)
				if err != nil {
					return a, nil, err
				}
				if got == 0 {
					bad(field, "no port is left in the NodePort range %d-%d", s.ranges.npLo, s.ranges.npHi)
					continue
				}
				p.NodePort = got
				svc.Spec.Ports[i].NodePort = got
				a.autoPorts = append(a.autoPorts, i)
			case slices.Contains(held, nodePortKey(p.NodePort)) || slices.Contains(used, nodePortKey(p.NodePort)):
			case p.NodePort < s.ranges.npLo || p.NodePort > s.ranges.npHi:
				bad(field, "%d is outside the NodePort range %d-%d", p.NodePort, s.ranges.npLo, s.ranges.npHi)
				continue
			default:
				holder, err := claim(nodePortKey(p.NodePort))
				if err != nil {
					return a, nil, err
				}
				if holder != "" {
					bad(field, "%d is already allocated to Service %s", p.NodePort, holder)
				}
			}
			used = append(used, nodePortKey(p.NodePort))
		}
	}
	// What the stored Service holds and this one will not.
	want := map[string]bool{}
	if view.Spec.NeedsClusterIP() && view.Spec.ClusterIP != "" {
		want[ipKey(view.Spec.ClusterIP)] = true
	}
	for _, k := range used {
		want[k] = true
	}
	for _, k := range held {
		if !want[k] {
			a.drop = append(a.drop, k)
		}
	}
	return a, causes, nil
}

// allocTries is how many random picks are tried before the claims are
// listed to find a free value.
const allocTries = 8

// allocateIP claims a free address of the service CIDR ("" when none is
// left): random picks first (the CIDR is mostly free), then a pick among
// the values no claim holds.
func (s *Server) allocateIP(ctx context.Context, a *svcAlloc) (string, error) {
	r := s.ranges
	try := func(off uint32) (bool, error) {
		// Only a claim created now is ours: one held already, even under
		// this Service's name, may be another apply's in flight.
		ip := r.addr(off).String()
		_, created, err := s.alloc.Claim(ctx, ipKey(ip), a.owner)
		if created {
			a.claimed = append(a.claimed, ipKey(ip))
		}
		return created, err
	}
	for range allocTries {
		off := rand.Uint32N(r.size)
		if !r.dynamicIP(off) {
			continue
		}
		ok, err := try(off)
		if err != nil {
			return "", err
		}
		if ok {
			return r.addr(off).String(), nil
		}
	}
	claims, err := s.alloc.List(ctx, "ip.")
	if err != nil {
		return "", err
	}
	taken := make(map[uint32]bool, len(claims))
	for _, c := range claims {
		if addr, err := netip.ParseAddr(strings.TrimPrefix(c.Key, "ip.")); err == nil && r.cidr.Contains(addr) {
			b := addr.As4()
			taken[(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))-r.base] = true
		}
	}
	start := rand.Uint32N(r.size)
	for i := range r.size {
		off := (start + i) % r.size
		if taken[off] || !r.dynamicIP(off) {
			continue
		}
		ok, err := try(off)
		if err != nil {
			return "", err
		}
		if ok {
			return r.addr(off).String(), nil
		}
	}
	return "", nil
}

// allocateNodePort claims a free port of the NodePort range (0 when none
// is left), as allocateIP does.
func (s *Server) allocateNodePort(ctx context.Context, a *svcAlloc) (int32, error) {
	r := s.ranges
	n := uint32(r.npHi - r.npLo + 1)
	try := func(p int32) (bool, error) {
		_, created, err := s.alloc.Claim(ctx, nodePortKey(p), a.owner)
		if created {
			a.claimed = append(a.claimed, nodePortKey(p))
		}
		return created, err
	}
	for range allocTries {
		p := r.npLo + int32(rand.Uint32N(n))
		ok, err := try(p)
		if err != nil {
			return 0, err
		}
		if ok {
			return p, nil
		}
	}
	claims, err := s.alloc.List(ctx, "nodeport.")
	if err != nil {
		return 0, err
	}
	taken := make(map[int32]bool, len(claims))
	for _, c := range claims {
		if v, err := strconv.Atoi(strings.TrimPrefix(c.Key, "nodeport.")); err == nil {
			taken[int32(v)] = true
		}
	}
	start := rand.Uint32N(n)
	for i := range n {
		p := r.npLo + int32((start+i)%n)
		if taken[p] {
			continue
		}
		ok, err := try(p)
		if err != nil {
			return 0, err
		}
		if ok {
			return p, nil
		}
	}
	return 0, nil
}

// adoptStored makes an applied Service keep the values its stored
// version already holds where this apply allocated its own (another apply
// of the same Service wrote first): obj is changed, and the values
// allocated here are noted for release.
func (a *svcAlloc) adoptStored(existing, obj *api.Service) {
	if existing.Spec.Type == api.ServiceTypeExternalName || obj.Spec.Type == api.ServiceTypeExternalName {
		return
	}
	if a.autoIP && existing.Spec.ClusterIP != "" && existing.Spec.ClusterIP != obj.Spec.ClusterIP {
		a.drop = append(a.drop, ipKey(obj.Spec.ClusterIP))
		obj.Spec.ClusterIP, obj.Spec.ClusterIPs = existing.Spec.ClusterIP, slices.Clone(existing.Spec.ClusterIPs)
		a.autoIP = false
	}
	if !existing.Spec.NeedsNodePorts() {
		return
	}
	for _, i := range a.autoPorts {
		p := &obj.Spec.Ports[i]
		for _, e := range existing.Spec.Ports {
			if e.Name == p.Name && e.NodePort != 0 && e.NodePort != p.NodePort {
				a.drop = append(a.drop, nodePortKey(p.NodePort))
				p.NodePort = e.NodePort
			}
		}
	}
	a.autoPorts = nil
}

// releaseDropped releases, once the Service is written, the keys its
// earlier version held and it no longer uses.
func (s *Server) releaseDropped(ctx context.Context, a *svcAlloc) {
	for _, k := range a.drop {
		if err := s.alloc.Release(ctx, k, a.owner); err != nil {
			s.log.Warn("release allocation (the repair pass will)", "key", k, "err", err)
		}
	}
	a.drop = nil
}

// mergeService keeps, on a re-applied Service, what the cluster allocated
// and the manifest leaves out, as Kubernetes' patchAllocatedValues: the
// cluster IP (unless the type becomes ExternalName) and each port's
// NodePort by port name (while both versions need NodePorts).
func mergeService(e, a *api.Service) {
	if a.Spec.Type != api.ServiceTypeExternalName && e.Spec.Type != api.ServiceTypeExternalName && a.Spec.ClusterIP == "" && len(a.Spec.ClusterIPs) == 0 {
		a.Spec.ClusterIP, a.Spec.ClusterIPs = e.Spec.ClusterIP, slices.Clone(e.Spec.ClusterIPs)
	}
	if !a.Spec.NeedsNodePorts() || !e.Spec.NeedsNodePorts() {
		return
	}
	for i := range a.Spec.Ports {
		p := &a.Spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, q := range e.Spec.Ports {
			if q.Name == p.Name && q.Protocol == p.Protocol {
				p.NodePort = q.NodePort
				break
			}
		}
	}
}

// serviceGone releases, after a Service was deleted (by anyone: a user,
// the garbage collector, the namespace controller), the IP and ports it
// held, unless a Service of that name created since uses them. Every API
// server sees the deletion; releases are compare-and-set, so that is
// harmless.
func (s *Server) serviceGone(svc *api.Service) {
	keys := serviceKeys(svc)
	if len(keys) == 0 || s.alloc == nil || !s.track() {
		return
	}
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		var inUse []string
		if cur, err := s.st.Get(ctx, serviceKind, svc.Namespace, svc.Name); err == nil {
			inUse = serviceKeys(cur.(*api.Service))
		} else if !api.IsNotFound(err) {
			s.log.Warn("release allocations of a deleted service (the repair pass will)", "service", svc.Namespace+"/"+svc.Name, "err", err)
			return
		}
		owner := ownerOf(svc.Namespace, svc.Name)
		for _, k := range keys {
			if slices.Contains(inUse, k) {
				continue
			}
			if err := s.alloc.Release(ctx, k, owner); err != nil {
				s.log.Warn("release allocation (the repair pass will)", "key", k, "err", err)
			}
		}
	}()
}

// RepairAllocations makes the allocations match the stored Services, as
// Kubernetes' IP and port repair controllers: a claim no Service uses
// (its apply failed half-way, its release was lost) and older than
// AllocRepairGrace is released; a value a Service uses without a claim
// is claimed again; a value two Services use is logged. It returns how
// many claims it released and restored.
func (s *Server) RepairAllocations(ctx context.Context) (released, restored int, err error) {
	var claims []store.Claim
	for _, prefix := range []string{"ip.", "nodeport."} {
		cs, err := s.alloc.List(ctx, prefix)
		if err != nil {
			return 0, 0, err
		}
		claims = append(claims, cs...)
	}
	// The Services after the claims: a claim made after the list is not
	// looked at, and one listed belongs to a Service written before this.
	objs, _, err := s.st.List(ctx, serviceKind, store.ListOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("repair allocations: list services: %w", err)
	}
	users := map[string]string{}
	for _, o := range objs {
		svc := o.(*api.Service)
		owner := ownerOf(svc.Namespace, svc.Name)
		for _, k := range serviceKeys(svc) {
			if prev, ok := users[k]; ok && prev != owner {
				s.log.Error("one value allocated to two services", "key", k, "services", prev+", "+owner)
				continue
			}
			users[k] = owner
		}
	}
	now := time.Now()
	held := map[string]bool{}
	for _, c := range claims {
		held[c.Key] = true
		if users[c.Key] == c.Owner || now.Sub(c.Created) < s.cfg.AllocRepairGrace {
			continue
		}
		if err := s.alloc.ReleaseAt(ctx, c.Key, c.Revision); err != nil {
			return released, restored, err
		}
		released++
		s.log.Info("released a leaked allocation", "key", c.Key, "owner", c.Owner)
	}
	for k, owner := range users {
		if held[k] {
			continue
		}
		holder, created, err := s.alloc.Claim(ctx, k, owner)
		if err != nil {
			return released, restored, err
		}
		if created {
			restored++
			s.log.Info("restored a missing allocation", "key", k, "owner", owner)
		} else if holder != "" {
			s.log.Error("one value allocated to two services", "key", k, "services", holder+", "+owner)
		}
	}
	return released, restored, nil
}

// repairLoop runs RepairAllocations now and every AllocRepairInterval
// until ctx ends.
func (s *Server) repairLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.AllocRepairInterval)
	defer t.Stop()
	for {
		if _, _, err := s.RepairAllocations(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("repair allocations", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
