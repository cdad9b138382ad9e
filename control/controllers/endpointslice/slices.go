package endpointslice

import (
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"slices"

	"github.com/kybernetes/kybernetes/api"
)

// MaxEndpoints is how many endpoints the controller puts in one slice, as
// Kubernetes' --max-endpoints-per-slice default.
const MaxEndpoints = 100

// ManagedBy is the value of the managed-by label on the controller's
// slices, Kubernetes' own, so tools that look for it find them.
const ManagedBy = "endpointslice-controller.k8s.io"

// group is the desired endpoints that share one set of ports.
type group struct {
	ports []api.EndpointPort
	eps   map[string]api.Endpoint // by endpointKey
}

// plan is what a reconcile writes.
type plan struct {
	create, update, del []*api.EndpointSlice
}

// desiredGroups groups the endpoints of svc's pods by their ports. With no
// endpoint at all it holds one empty group, so the Service keeps one
// empty slice (Kubernetes' placeholder: "the controller has seen it").
func desiredGroups(eps []endpointOf) map[string]*group {
	groups := map[string]*group{}
	for _, e := range eps {
		k := portsKey(e.ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: e.ports, eps: map[string]api.Endpoint{}}
			groups[k] = g
		}
		g.eps[endpointKey(&e.ep)] = e.ep
	}
	if len(groups) == 0 {
		groups[""] = &group{eps: map[string]api.Endpoint{}}
	}
	return groups
}

// sliceLabels are the labels of svc's slices: the Service's own (as
// Kubernetes copies them) and the service-name and managed-by labels.
func sliceLabels(svc *api.Service) map[string]string {
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[api.LabelServiceName] = svc.Name
	l[api.LabelManagedBy] = ManagedBy
	return l
}

// planSlices turns the desired groups and the existing slices of svc into
// writes, moving as few endpoints as it can: an endpoint stays in the
// slice that lists it, new ones fill slices with room before a new slice
// is made, slices left empty go (but for one placeholder), and so do
// slices of port sets no pod has any more.
func planSlices(svc *api.Service, existing []*api.EndpointSlice, groups map[string]*group) plan {
	var p plan
	labels := sliceLabels(svc)
	names := map[string]bool{}
	for _, s := range existing {
		names[s.Name] = true
	}
	placed := map[string]bool{}
	bySet := map[string][]*api.EndpointSlice{} // the slices kept, by port set
	for _, old := range existing {
		k := portsKey(old.Ports)
		g := groups[k]
		if g == nil || !ownedBy(old, svc) {
			p.del = append(p.del, old)
			continue
		}
		s := api.DeepCopy(old)
		s.Endpoints = s.Endpoints[:0]
		for _, ep := range old.Endpoints {
			ek := endpointKey(&ep)
			if d, ok := g.eps[ek]; ok && !placed[k+"\x00"+ek] && len(s.Endpoints) < MaxEndpoints {
				s.Endpoints = append(s.Endpoints, d)
				placed[k+"\x00"+ek] = true
			}
		}
		bySet[k] = append(bySet[k], s)
	}
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		var pending []api.Endpoint
		for ek, ep := range g.eps {
			if !placed[k+"\x00"+ek] {
				pending = append(pending, ep)
			}
		}
		sortEndpoints(pending)
		kept := bySet[k]
		for _, s := range kept {
			for len(pending) > 0 && len(s.Endpoints) < MaxEndpoints {
				s.Endpoints = append(s.Endpoints, pending[0])
				pending = pending[1:]
			}
		}
		var fresh []*api.EndpointSlice
		for len(pending) > 0 || (len(kept) == 0 && len(fresh) == 0) {
			n := min(len(pending), MaxEndpoints)
			s := newSlice(svc, g.ports, labels, nextName(svc.Name, k, names))
			s.Endpoints = append(s.Endpoints, pending[:n]...)
			pending = pending[n:]
			fresh = append(fresh, s)
		}
		// Slices emptied by departed pods go, unless the group (the
		// placeholder) would be left with none.
		remaining := len(fresh)
		for _, s := range kept {
			if len(s.Endpoints) > 0 {
				remaining++
			}
		}
		for _, s := range kept {
			if len(s.Endpoints) == 0 && remaining > 0 {
				p.del = append(p.del, s)
				continue
			}
			remaining++
			sortEndpoints(s.Endpoints)
			s.Labels = labels
			if !sameSlice(s, existingNamed(existing, s.Name)) {
				p.update = append(p.update, s)
			}
		}
		for _, s := range fresh {
			sortEndpoints(s.Endpoints)
		}
		p.create = append(p.create, fresh...)
	}
	return p
}

func existingNamed(existing []*api.EndpointSlice, name string) *api.EndpointSlice {
	for _, s := range existing {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// sameSlice reports whether a planned slice writes nothing new over old.
func sameSlice(s, old *api.EndpointSlice) bool {
	if old == nil {
		return false
	}
	return reflect.DeepEqual(s.Endpoints, old.Endpoints) && maps.Equal(s.Labels, old.Labels) && s.AddressType == old.AddressType
}

// ownedBy reports whether the slice's controlling owner is this Service
// (not an earlier Service of the same name).
func ownedBy(s *api.EndpointSlice, svc *api.Service) bool {
	ref := api.ControllerOf(s)
	return ref != nil && ref.Kind == "Service" && ref.UID == svc.UID
}

func newSlice(svc *api.Service, ports []api.EndpointPort, labels map[string]string, name string) *api.EndpointSlice {
	t := true
	s := &api.EndpointSlice{
		ObjectMeta: api.ObjectMeta{
			Name: name, Namespace: svc.Namespace, Labels: labels,
			OwnerReferences: []api.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID, Controller: &t, BlockOwnerDeletion: &t}},
		},
		AddressType: api.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   []api.Endpoint{},
	}
	api.Default(s)
	return s
}

// nextName is a slice name for svc's port set k that names holds no slice
// of: "<service>-<hash of the port set>" and then "-1", "-2"... A name
// picked from a lagging cache may exist already; its create then fails and
// the reconcile runs again.
func nextName(svc, k string, names map[string]bool) string {
	h := fnv.New32a()
	h.Write([]byte(k))
	base := fmt.Sprintf("%s-%08x", svc, h.Sum32())
	name := base
	for i := 1; names[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	names[name] = true
	return name
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
