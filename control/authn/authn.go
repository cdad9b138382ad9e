package authn

import (
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// NATS account names of the principals (the contract with the NATS
// configuration that control/controlplane writes).
const (
	// AccountUsers is the account users (admin and others) connect in.
	AccountUsers = "USERS"
	// AccountNodes is the account node agents connect in.
	AccountNodes = "NODES"
)

// RequestInfoHeader is the header the NATS server sets on a request that
// crosses a service import with share: true (nats-server's ClientInfoHdr).
const RequestInfoHeader = "Nats-Request-Info"

// Well-known user and group names, as Kubernetes spells them.
const (
	// ControlPlaneUser is the control plane itself (requests from its own account).
	ControlPlaneUser = "system:kyb-control-plane"
	// GroupMasters may do everything; authorization never denies it.
	GroupMasters = "system:masters"
	// GroupAuthenticated holds every authenticated user and node.
	GroupAuthenticated = "system:authenticated"
	// GroupNodes holds every node principal.
	GroupNodes = "system:nodes"
	// NodeUserPrefix starts the user name of a node: system:node:<nodename>.
	NodeUserPrefix = "system:node:"
	// GroupTagPrefix starts a NATS user tag that puts the user in a group:
	// the tag "group:dev" puts it in group "dev".
	GroupTagPrefix = "group:"
)

// UserInfo is an authenticated principal: a user name and its groups.
type UserInfo struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
}

// InGroup reports whether u is in group g.
func (u UserInfo) InGroup(g string) bool {
	for _, x := range u.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// ControlPlane is the principal of a request from the control plane's own
// account.
func ControlPlane() UserInfo {
	return UserInfo{Name: ControlPlaneUser, Groups: []string{GroupMasters}}
}

// NodeUser is the principal of the node agent of node.
func NodeUser(node string) UserInfo {
	return UserInfo{Name: NodeUserPrefix + node, Groups: []string{GroupNodes, GroupAuthenticated}}
}

// NodeName returns the node of a node principal: its name without the
// system:node: prefix, and whether u is a node (in group system:nodes, with
// such a name).
func NodeName(u UserInfo) (string, bool) {
	n, ok := strings.CutPrefix(u.Name, NodeUserPrefix)
	if !ok || n == "" || !u.InGroup(GroupNodes) {
		return "", false
	}
	return n, true
}

// clientInfo is the part of nats-server's ClientInfo that identifies a client.
type clientInfo struct {
	Account string   `json:"acc"`
	User    string   `json:"user"`
	NameTag string   `json:"name_tag"`
	Tags    []string `json:"tags"`
}

// maxNameLen bounds a user name (Kubernetes' object names are at most 253
// bytes; a user name has room for a prefix).
const maxNameLen = 512

// Accounts names the NATS accounts of users and nodes as they appear in the
// `acc` field of Nats-Request-Info: the account's name in a configuration
// file (USERS, NODES), or its public key when accounts are JWTs. An empty
// field means the default (AccountUsers, AccountNodes).
type Accounts struct {
	Users, Nodes string
}

// FromHeader returns who sent a request with headers h (see the package
// documentation), with the default account names. A header that does not
// parse, names another account, or names no user is a 401 *api.Status; so
// is a node user not of the form system:node:<DNS-1123 label>.
func FromHeader(h nats.Header) (UserInfo, error) { return Accounts{}.FromHeader(h) }

// FromHeader is the package's FromHeader with the accounts a names.
func (a Accounts) FromHeader(h nats.Header) (UserInfo, error) {
	users, nodes := a.Users, a.Nodes
	if users == "" {
		users = AccountUsers
	}
	if nodes == "" {
		nodes = AccountNodes
	}
	vals, present := h[RequestInfoHeader]
	if !present {
		return ControlPlane(), nil
	}
	// The NATS server removes a sender's own Nats-Request-Info and appends
	// the true one, but its removal can be dodged (a header value holding
	// the key twice stops its search; a key of other case is not its key,
	// yet decodes to this one): a second value is a forgery.
	if len(vals) != 1 {
		return UserInfo{}, unauthorized("%d %s headers: only the NATS server may set it", len(vals), RequestInfoHeader)
	}
	raw := vals[0]
	if raw == "" {
		return UserInfo{}, unauthorized("empty %s header", RequestInfoHeader)
	}
	var ci clientInfo
	if err := json.Unmarshal([]byte(raw), &ci); err != nil {
		return UserInfo{}, unauthorized("unreadable %s header: %v", RequestInfoHeader, err)
	}
	name := ci.User
	if ci.NameTag != "" {
		name = ci.NameTag
	}
	if name == "" {
		return UserInfo{}, unauthorized("request from account %q names no user", ci.Account)
	}
	if len(name) > maxNameLen {
		return UserInfo{}, unauthorized("user name of %d bytes is too long", len(name))
	}
	switch ci.Account {
	case users:
		if strings.HasPrefix(name, "system:") {
			// Names of the system: prefix are the cluster's own principals.
			return UserInfo{}, unauthorized("user %q: names starting with \"system:\" are reserved", name)
		}
		u := UserInfo{Name: name, Groups: []string{GroupAuthenticated}}
		for _, t := range ci.Tags {
			// system: groups are the cluster's own (masters, nodes): a tag
			// cannot grant them.
			if g, ok := strings.CutPrefix(t, GroupTagPrefix); ok && g != "" && !strings.HasPrefix(g, "system:") && !u.InGroup(g) {
				u.Groups = append(u.Groups, g)
			}
		}
		return u, nil
	case nodes:
		node, ok := strings.CutPrefix(name, NodeUserPrefix)
		if !ok {
			return UserInfo{}, unauthorized("node user %q is not %s<node>", name, NodeUserPrefix)
		}
		if msgs := validation.IsDNS1123Label(node); len(msgs) > 0 {
			return UserInfo{}, unauthorized("node user %q: %s", name, strings.Join(msgs, "; "))
		}
		return NodeUser(node), nil
	}
	return UserInfo{}, unauthorized("requests from account %q are not served", ci.Account)
}

func unauthorized(format string, args ...any) *api.Status {
	return api.NewUnauthorized(format, args...)
}
