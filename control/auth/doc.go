// Package auth is who may reach the cluster, and as whom.
//
// It owns the control plane's identities, made on first start under the
// server's data dir (pki/): a cluster CA and a server certificate for TLS,
// and one issuer NKey that signs every credential the cluster hands out and
// every answer of its NATS auth callout.
//
// # Accounts
//
// The embedded NATS server runs five accounts (NATSConfig writes them):
//
//   - KYB: the control plane itself. JetStream (all cluster state) lives
//     here, and only the control plane's own in-process connections log in
//     to it, with a password made at each start and never written down.
//   - USERS: people and scripts. They reach only the API (kyb.api.v1.*,
//     imported from KYB with share: true, so the apiserver learns who asks
//     from the Nats-Request-Info header the NATS server adds) and the micro
//     service's $SRV.* info.
//   - NODES: node agents. Each may publish only on kyb.node.<its name>.>
//     (its pods' events too, checked by the apiserver) and
//     kyb.logs.<its name>.>, and subscribe
//     only to kyb.agent.<its name>.> and its own inbox _INBOX_<its name>.>.
//   - BOOTSTRAP: an agent holding a join token, before it has credentials:
//     it may only request kyb.join.
//   - SYS: the NATS system account.
//
// No client ever reaches $JS.API.>, $KV.> or $O.>: those subjects exist only
// inside KYB.
//
// # Authentication: auth callout
//
// Every connection but the control plane's own goes through the server's
// auth callout, answered by Callout. It accepts two things:
//
//   - A credential (a standard NATS .creds file: a user JWT signed by the
//     issuer, and the user's NKey seed, which signs the server's nonce). The
//     JWT's name says who it is ("admin", "alice", "system:node:n1"), its
//     tags carry groups. It is refused when its signature, nonce signature
//     or expiry is wrong, or when its principal was revoked after it was
//     issued.
//   - A bootstrap token (connect option auth_token), for kyb.join only.
//
// The callout (rather than operator-mode JWT accounts) is chosen because
// tokens, revocations and expiry are then checked against live cluster state
// on every connect, with no account JWT to re-sign and push, and the same
// code serves one server or three; a connect costs one in-process request.
// See docs/RATIONALE.md.
//
// # Join
//
// A bootstrap token is KYB1<sha256 of the CA certificate, hex>::<id>.<secret>.
// The agent connects with it (checking that the server's chain ends in a CA
// of that hash, so a token also pins the cluster), sends its NKey public key
// and node name to kyb.join, and receives a node JWT; the seed never leaves
// the node. The credentials are kept under the agent's data dir and reused.
package auth
