// Package authn tells the apiserver who sent a request.
//
// Identity comes from NATS itself, never from a request's payload. Users
// connect in the NATS account "USERS" and nodes in "NODES"; both reach the
// apiserver's service, which lives in the control plane's own account,
// through a service import with `share: true`. For such a request the NATS
// server sets the header Nats-Request-Info (nats-server's ClientInfoHdr) to
// the JSON of the sender's ClientInfo: account, user, name tag, tags. The
// server overwrites any header of that name the sender set, so it cannot be
// forged across the import. A request without the header was sent from
// inside the control plane's own account: the control plane.
//
// FromHeader maps the header to a UserInfo, Kubernetes' user.Info:
//
//	no header                  -> system:kyb-control-plane, groups [system:masters]
//	acc USERS, user NAME       -> NAME, groups [system:authenticated] + NAME of each tag "group:NAME"
//	acc NODES, user system:node:N -> system:node:N, groups [system:nodes system:authenticated]
//	anything else              -> an error (401 Unauthorized)
//
// A user authenticated by a JWT (or auth callout) has its public key as
// `user` and its name in `name_tag`; the name tag is used when present.
// Group tags ("group:NAME") exist only on JWT users: NATS gives users of a
// configuration file no tags. When accounts are JWTs, `acc` is the
// account's public key: name them with Accounts{Users, Nodes}.FromHeader.
// User names starting with "system:" are refused in USERS, and tags cannot
// put a user in a "system:" group: those are the cluster's own principals.
// Everything here is pure and safe for concurrent use.
package authn
