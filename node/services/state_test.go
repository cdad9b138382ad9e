package services

import (
	"fmt"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func ptr[T any](v T) *T { return &v }

func TestEndpoints(t *testing.T) {
	svc := &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: api.ServiceSpec{Ports: []api.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: "UDP"}}}}
	sl := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: map[string]string{api.LabelServiceName: "web"}},
		AddressType: "IPv4",
		Ports:       []api.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}, {Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: ptr("UDP")}},
		Endpoints: []api.Endpoint{
			{Addresses: []string{"10.0.0.1"}},
			{Addresses: []string{"10.0.0.2"}, Conditions: api.EndpointConditions{Ready: ptr(false)}},
			{Addresses: []string{"10.0.0.3"}, Conditions: api.EndpointConditions{Ready: ptr(false), Terminating: ptr(true)}},
			{Addresses: []string{"192.0.2.2"}, Runtime: api.RuntimeWasm, NodeName: "n1"},
		}}
	other := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Namespace: "other", Name: "web-1", Labels: map[string]string{api.LabelServiceName: "web"}},
		AddressType: "IPv4", Ports: sl.Ports, Endpoints: []api.Endpoint{{Addresses: []string{"10.9.9.9"}}}}
	fqdn := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Namespace: "ns", Name: "web-2", Labels: map[string]string{api.LabelServiceName: "web"}},
		AddressType: "FQDN", Ports: sl.Ports, Endpoints: []api.Endpoint{{Addresses: []string{"example.com"}}}}
	c := NewCache()
	c.Apply(api.EventAdded, svc)
	for _, s := range []*api.EndpointSlice{sl, other, fqdn} {
		c.Apply(api.EventAdded, s)
	}
	list := func(eps []Endpoint) string {
		out := ""
		for _, e := range eps {
			out += fmt.Sprintf("%s:%d/%v ", e.Address, e.Port, e.Wasm)
		}
		return out
	}
	st := c.State()
	if got := list(st.Endpoints("ns/web", svc, &svc.Spec.Ports[0])); got != "10.0.0.1:8080/false 192.0.2.2:8080/true " {
		t.Errorf("http: %s", got)
	}
	if got := list(st.Endpoints("ns/web", svc, &svc.Spec.Ports[1])); got != "10.0.0.1:5353/false 192.0.2.2:5353/true " {
		t.Errorf("dns: %s", got)
	}
	svc.Spec.PublishNotReadyAddresses = true
	if got := list(st.Endpoints("ns/web", svc, &svc.Spec.Ports[0])); got != "10.0.0.1:8080/false 10.0.0.2:8080/false 192.0.2.2:8080/true " {
		t.Errorf("publishNotReadyAddresses: %s", got)
	}
	// A new list without the other namespace's slice drops it.
	c.BeginList()
	c.Apply(api.EventAdded, svc)
	c.Apply(api.EventAdded, sl)
	c.EndList()
	if st := c.State(); !st.Synced || len(st.Slices["other/web"]) != 0 || len(st.Slices["ns/web"]) != 1 {
		t.Errorf("after a relist: synced %v slices %v", st.Synced, st.Slices)
	}
}
