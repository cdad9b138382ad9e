package api

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Subjects of the control plane's auth service (micro service "kyb-auth").
const (
	// SubjectJoin exchanges a join token for node credentials: JoinRequest -> JoinReply.
	// Only connections holding a join token may call it.
	SubjectJoin = "kyb.join"
	// SubjectTokenCreate makes a join token: TokenCreateRequest -> TokenCreateReply.
	SubjectTokenCreate = SubjectPrefix + ".tokens.create"
	// SubjectUserCreate issues user credentials: UserCreateRequest -> UserCreateReply.
	SubjectUserCreate = SubjectPrefix + ".users.create"
	// SubjectRevoke revokes a node's or user's credentials: RevokeRequest -> RevokeReply.
	SubjectRevoke = SubjectPrefix + ".credentials.revoke"
)

// JoinRequest asks for the credentials of node Name, for the NKey user
// public key PublicKey (the seed never leaves the node).
type JoinRequest struct {
	Name      string `json:"name"`
	PublicKey string `json:"publicKey"`
}

// JoinReply carries the node's user JWT and the cluster CA (PEM).
type JoinReply struct {
	JWT string `json:"jwt"`
	CA  string `json:"ca"`
	// Servers are the client URLs of every control plane server, so the
	// node can reach any of them.
	Servers []string `json:"servers,omitempty"`
}

// TokenCreateRequest asks for a join token valid for TTL (Go duration, default 24h).
type TokenCreateRequest struct {
	TTL         string `json:"ttl,omitempty"`
	Description string `json:"description,omitempty"`
}

// TokenCreateReply is a new join token.
type TokenCreateReply struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// UserCreateRequest asks for the credentials of user Name for the NKey
// user public key PublicKey.
type UserCreateRequest struct {
	Name      string   `json:"name"`
	PublicKey string   `json:"publicKey"`
	Groups    []string `json:"groups,omitempty"`
}

// UserCreateReply carries the user's JWT, the cluster CA (PEM, empty when
// the server does not use TLS) and the inbox prefix the user must use.
type UserCreateReply struct {
	JWT         string `json:"jwt"`
	CA          string `json:"ca,omitempty"`
	InboxPrefix string `json:"inboxPrefix"`
	// Servers are the client URLs of every control plane server, so the
	// user's kyb can reach any of them.
	Servers []string `json:"servers,omitempty"`
}

// RevokeRequest revokes every credential issued so far to a node (Kind
// "node") or user (Kind "user"), and closes its connections.
type RevokeRequest struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// RevokeReply confirms a revocation.
type RevokeReply struct {
	Principal string    `json:"principal"`
	RevokedAt time.Time `json:"revokedAt"`
}

// APIVerb is one subject users call on the apiserver (or the auth service).
type APIVerb struct {
	Subject string
	// Stream: the reply is several messages ended by an empty one.
	Stream bool
}

// APIVerbs lists every subject a user may publish to: the NATS server
// routes exactly these from the users' account to the control plane, so a
// new verb must be added here (a test checks the apiserver's endpoints).
var APIVerbs = []APIVerb{
	{Subject: SubjectApply},
	{Subject: SubjectGet},
	{Subject: SubjectList},
	{Subject: SubjectDelete},
	{Subject: SubjectTokenCreate},
	{Subject: SubjectUserCreate},
	{Subject: SubjectRevoke},
	{Subject: SubjectAuthz},
	{Subject: SubjectWatch, Stream: true},
	{Subject: SubjectLogs, Stream: true},
	{Subject: SubjectModulesPush},
	{Subject: SubjectModulesUpload + ".*"},
	{Subject: SubjectModulesList},
	{Subject: SubjectModulesGet},
	{Subject: SubjectBackup, Stream: true},
	{Subject: SubjectExec, Stream: true},
	{Subject: SubjectAttach, Stream: true},
	{Subject: SubjectPortForward, Stream: true},
	{Subject: SubjectExecInput},
	{Subject: SubjectTop},
	{Subject: SubjectClusterStatus},
	{Subject: SubjectClusterRemove},
}

// NodeVerbs lists every subject a node may publish to on the apiserver
// (node "*" for any): the NATS server routes exactly these from the nodes'
// account to the control plane.
var NodeVerbs = []APIVerb{
	{Subject: NodeSubject("*", NodeVerbRegister)},
	{Subject: NodeSubject("*", NodeVerbHeartbeat)},
	{Subject: NodeSubject("*", NodeVerbStatus)},
	{Subject: NodeSubject("*", NodeVerbPodStatus)},
	{Subject: NodeSubject("*", NodeVerbSync)},
	{Subject: NodeSubject("*", NodeVerbEvents)},
	{Subject: NodeSubject("*", NodeVerbModuleInfo)},
	{Subject: NodeSubject("*", NodeVerbUsage)},
	{Subject: NodeSubject("*", NodeVerbModule), Stream: true},
	{Subject: NodeSubject("*", NodeVerbConfig)},
	{Subject: NodeSubject("*", NodeVerbVolume)},
	{Subject: NodeSubject("*", NodeVerbVolumeDeleted)},
	{Subject: NodeSubject("*", NodeVerbServiceWatch), Stream: true},
	{Subject: NodeSubject("*", NodeVerbExec)},
	{Subject: NodeSubject("*", NodeVerbCluster)},
}

// JoinTokenPrefix starts every join token; the CA hash follows it.
const JoinTokenPrefix = "KYB1"

var joinTokenRE = regexp.MustCompile(`^` + JoinTokenPrefix + `([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})$`)

// JoinToken is a join token taken apart: KYB1<CAHash>::<ID>.<Secret>, where
// CAHash is the hex SHA-256 of the cluster CA certificate (DER), so that a
// token also tells the joining node which server to trust.
type JoinToken struct {
	CAHash, ID, Secret string
}

// ParseJoinToken splits a join token.
func ParseJoinToken(tok string) (JoinToken, error) {
	m := joinTokenRE.FindStringSubmatch(strings.TrimSpace(tok))
	if m == nil {
		return JoinToken{}, fmt.Errorf("malformed join token: want %s<64 hex>::<6 chars>.<16 chars> (from `kyb token create`)", JoinTokenPrefix)
	}
	return JoinToken{CAHash: m[1], ID: m[2], Secret: m[3]}, nil
}

func (t JoinToken) String() string {
	return JoinTokenPrefix + t.CAHash + "::" + t.ID + "." + t.Secret
}

// InboxPrefix is the reply inbox prefix of a user or node other than the
// admin: only that principal may subscribe beneath it, so no one reads
// another's replies.
func InboxPrefix(name string) string { return "_INBOX_" + name }
