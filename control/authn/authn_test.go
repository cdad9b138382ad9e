package authn_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authn"
)

func TestFromHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string // "" means no header
		want   authn.UserInfo
		code   int // expected error code, 0 for none
	}{
		{"no header is the control plane", "", authn.UserInfo{Name: "system:kyb-control-plane", Groups: []string{"system:masters"}}, 0},
		{"user", `{"acc":"USERS","user":"bob"}`, authn.UserInfo{Name: "bob", Groups: []string{"system:authenticated"}}, 0},
		{"user with group tags", `{"acc":"USERS","user":"alice","tags":["group:dev","team:x","group:ops","group:dev","group:","group:system:masters","group:system:nodes"]}`,
			authn.UserInfo{Name: "alice", Groups: []string{"system:authenticated", "dev", "ops"}}, 0},
		{"jwt user: name tag wins over the public key", `{"acc":"USERS","user":"UABCDEF","name_tag":"carol"}`,
			authn.UserInfo{Name: "carol", Groups: []string{"system:authenticated"}}, 0},
		{"node", `{"acc":"NODES","user":"system:node:n1"}`, authn.UserInfo{Name: "system:node:n1", Groups: []string{"system:nodes", "system:authenticated"}}, 0},
		{"node without the prefix", `{"acc":"NODES","user":"n1"}`, authn.UserInfo{}, 401},
		{"node with a bad name", `{"acc":"NODES","user":"system:node:../x"}`, authn.UserInfo{}, 401},
		{"unknown account", `{"acc":"$G","user":"bob"}`, authn.UserInfo{}, 401},
		{"no account", `{"user":"bob"}`, authn.UserInfo{}, 401},
		{"no user", `{"acc":"USERS"}`, authn.UserInfo{}, 401},
		{"reserved user name", `{"acc":"USERS","user":"system:kyb-control-plane"}`, authn.UserInfo{}, 401},
		{"unparsable", `{"acc":`, authn.UserInfo{}, 401},
	}
	t.Run("two headers are a forgery", func(t *testing.T) {
		h := nats.Header{authn.RequestInfoHeader: []string{`{"acc":"USERS","user":"admin"}`, `{"acc":"USERS","user":"bob"}`}}
		if u, err := authn.FromHeader(h); err == nil {
			t.Fatalf("FromHeader = %+v; want 401", u)
		}
	})
	t.Run("an empty header is not the control plane", func(t *testing.T) {
		h := nats.Header{authn.RequestInfoHeader: []string{""}}
		if u, err := authn.FromHeader(h); err == nil {
			t.Fatalf("FromHeader = %+v; want 401", u)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			if tt.header != "" {
				h.Set(authn.RequestInfoHeader, tt.header)
			}
			got, err := authn.FromHeader(h)
			if tt.code != 0 {
				st, ok := err.(*api.Status)
				if !ok || st.Code != tt.code {
					t.Fatalf("FromHeader = %+v, %v; want a %d Status", got, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromHeader: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("FromHeader = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestAccountsByPublicKey(t *testing.T) {
	a := authn.Accounts{Users: "AUSERSKEY", Nodes: "ANODESKEY"}
	h := nats.Header{}
	h.Set(authn.RequestInfoHeader, `{"acc":"AUSERSKEY","user":"UKEY","name_tag":"bob"}`)
	if u, err := a.FromHeader(h); err != nil || u.Name != "bob" {
		t.Fatalf("user by account key = %+v, %v", u, err)
	}
	h.Set(authn.RequestInfoHeader, `{"acc":"ANODESKEY","user":"UKEY","name_tag":"system:node:n1"}`)
	if u, err := a.FromHeader(h); err != nil || u.Name != "system:node:n1" {
		t.Fatalf("node by account key = %+v, %v", u, err)
	}
	h.Set(authn.RequestInfoHeader, `{"acc":"USERS","user":"bob"}`)
	if _, err := a.FromHeader(h); err == nil {
		t.Fatal("the default account name is accepted when another is configured")
	}
}

func TestNodeName(t *testing.T) {
	tests := []struct {
		name string
		u    authn.UserInfo
		node string
		ok   bool
	}{
		{"node", authn.NodeUser("n1"), "n1", true},
		{"user with a node-like name but not in system:nodes", authn.UserInfo{Name: "system:node:n1", Groups: []string{"system:authenticated"}}, "", false},
		{"control plane", authn.ControlPlane(), "", false},
		{"empty node name", authn.UserInfo{Name: "system:node:", Groups: []string{"system:nodes"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := authn.NodeName(tt.u)
			if n != tt.node || ok != tt.ok {
				t.Fatalf("NodeName = %q, %v; want %q, %v", n, ok, tt.node, tt.ok)
			}
		})
	}
}

// FuzzFromHeader: whatever the header holds, FromHeader answers an error or
// a principal with a name, never the control plane, and never a node
// outside NODES.
func FuzzFromHeader(f *testing.F) {
	for _, seed := range []string{
		`{"acc":"USERS","user":"bob","tags":["group:dev"]}`,
		`{"acc":"NODES","user":"system:node:n1"}`,
		`{"acc":"USERS","user":"system:node:n1"}`,
		`{"acc":"USERS","user":"UKEY","name_tag":"carol"}`,
		`{"acc":"X"}`, `null`, `[]`, `{"acc":"USERS","user":""}`, "",
		`{"acc":"USERS","user":"eve","tags":["group:system:masters"]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h := nats.Header{authn.RequestInfoHeader: []string{raw}}
		u, err := authn.FromHeader(h)
		if err != nil {
			if st, ok := err.(*api.Status); !ok || st.Code != 401 {
				t.Fatalf("error %v is not a 401 Status", err)
			}
			return
		}
		if u.Name == "" || u.InGroup(authn.GroupMasters) || u.Name == authn.ControlPlaneUser {
			t.Fatalf("header %q gave %+v", raw, u)
		}
		if _, isNode := authn.NodeName(u); isNode && !strings.Contains(raw, authn.AccountNodes) {
			t.Fatalf("header %q gave a node principal %+v", raw, u)
		}
	})
}
