package auth

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
)

// Export is one API subject served by the control plane to users. Stream
// marks a verb that answers with several messages and ends with an empty
// one (watch, logs).
type Export struct {
	Subject string
	Stream  bool
}

// StreamResponseThreshold bounds how long NATS keeps the reply route of a
// streaming verb for a user; a stream ends (and the client resumes it)
// within it.
const StreamResponseThreshold = 5 * time.Minute

// Accounts is the NATS side of an Authority for one server: the account
// JWTs it resolves and the in-memory users of the control plane. Safe for
// concurrent use.
type Accounts struct {
	a        *Authority
	exports  []Export
	resolver *natsserver.MemAccResolver
	authUser string // public key of the auth callout's own user

	mu sync.Mutex
	ns *natsserver.Server
}

// InternalUser is an in-memory credential of the control plane.
type InternalUser struct {
	JWT string
	Key nkeys.KeyPair
}

// Configure sets opts up for operator mode: the trusted operator, a
// resolver holding every account's JWT (with its exports, imports and
// revocations), the system account and the default sentinel (so that a
// connection without credentials reaches the auth callout, which accepts
// only join tokens). It returns the accounts and the users of the control
// plane (account KYB) and of the auth callout (account AUTH).
func (a *Authority) Configure(opts *natsserver.Options, exports []Export) (*Accounts, InternalUser, InternalUser, error) {
	var control, callout InternalUser
	var err error
	if control.JWT, control.Key, err = a.internalUser(AccountControl, "kyb-control-plane"); err != nil {
		return nil, control, callout, fmt.Errorf("control plane user: %w", err)
	}
	if callout.JWT, callout.Key, err = a.internalUser(AccountAuth, "kyb-auth-callout"); err != nil {
		return nil, control, callout, fmt.Errorf("auth callout user: %w", err)
	}
	x := &Accounts{a: a, exports: exports, resolver: &natsserver.MemAccResolver{}}
	x.authUser, _ = callout.Key.PublicKey()

	opPub, _ := a.operator.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "kybernetes"
	oc.SystemAccount = a.pubs[AccountSystem]
	opJWT, err := oc.Encode(a.operator)
	if err != nil {
		return nil, control, callout, fmt.Errorf("sign operator: %w", err)
	}
	if oc, err = jwt.DecodeOperatorClaims(opJWT); err != nil {
		return nil, control, callout, err
	}
	for _, n := range accountNames {
		tok, err := x.accountJWT(n)
		if err != nil {
			return nil, control, callout, err
		}
		if err := x.resolver.Store(a.pubs[n], tok); err != nil {
			return nil, control, callout, err
		}
	}
	// The sentinel: a bearer user of AUTH that may do nothing by itself.
	skp, _ := nkeys.CreateUser()
	spub, _ := skp.PublicKey()
	sc := jwt.NewUserClaims(spub)
	sc.Name = "sentinel"
	sc.BearerToken = true
	sc.Permissions.Pub.Deny.Add(">")
	sc.Permissions.Sub.Deny.Add(">")
	sentinel, err := sc.Encode(a.accounts[AccountAuth])
	if err != nil {
		return nil, control, callout, fmt.Errorf("sign sentinel: %w", err)
	}

	opts.TrustedOperators = []*jwt.OperatorClaims{oc}
	opts.AccountResolver = x.resolver
	opts.SystemAccount = a.pubs[AccountSystem]
	opts.DefaultSentinel = sentinel
	return x, control, callout, nil
}

// Attach gives the accounts the running server, for revocations.
func (x *Accounts) Attach(ns *natsserver.Server) {
	x.mu.Lock()
	x.ns = ns
	x.mu.Unlock()
}

func (x *Accounts) accountJWT(name string) (string, error) {
	ac := x.claims(name)
	tok, err := ac.Encode(x.a.operator)
	if err != nil {
		return "", fmt.Errorf("sign account %s: %w", name, err)
	}
	return tok, nil
}

// claims builds account name's claims: see the package doc for the layout.
func (x *Accounts) claims(name string) *jwt.AccountClaims {
	a := x.a
	ac := jwt.NewAccountClaims(a.pubs[name])
	ac.Name = name
	kyb := a.pubs[AccountControl]
	service := func(subject string, stream bool) *jwt.Export {
		e := &jwt.Export{Name: subject, Subject: jwt.Subject(subject), Type: jwt.Service}
		if stream {
			e.ResponseType = jwt.ResponseTypeStream
			e.ResponseThreshold = StreamResponseThreshold
		}
		return e
	}
	imp := func(subject string, typ jwt.ExportType, share bool) *jwt.Import {
		return &jwt.Import{Name: subject, Subject: jwt.Subject(subject), Account: kyb, Type: typ, Share: share}
	}
	switch name {
	case AccountControl:
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1, MaxAckPending: -1}
		for _, e := range x.exports {
			ac.Exports.Add(service(e.Subject, e.Stream))
		}
		for _, v := range api.NodeVerbs {
			ac.Exports.Add(service(v.Subject, v.Stream))
		}
		ac.Exports.Add(
			service("$SRV.>", false),
			service("kyb.logs.>", false),
			service(api.SubjectJoin, false),
			&jwt.Export{Name: "agents", Subject: "kyb.agent.>", Type: jwt.Stream},
		)
	case AccountUsers:
		for _, e := range x.exports {
			ac.Imports.Add(imp(e.Subject, jwt.Service, true))
		}
		ac.Imports.Add(imp("$SRV.>", jwt.Service, false))
		ac.Revocations = a.revocationsOf(name)
	case AccountNodes:
		for _, v := range api.NodeVerbs {
			ac.Imports.Add(imp(v.Subject, jwt.Service, true))
		}
		ac.Imports.Add(
			imp("kyb.logs.>", jwt.Service, false),
			imp("kyb.agent.>", jwt.Stream, false),
		)
		ac.Revocations = a.revocationsOf(name)
	case AccountBootstrap:
		ac.Imports.Add(imp(api.SubjectJoin, jwt.Service, true))
	case AccountAuth:
		ac.Authorization.AuthUsers.Add(x.authUser)
		ac.Authorization.AllowedAccounts.Add(a.pubs[AccountBootstrap])
	}
	return ac
}

// Revoke refuses, from now on, the credentials of the user public keys
// pubs of account (AccountUsers or AccountNodes) issued until now, and
// closes their open connections.
func (x *Accounts) Revoke(account string, pubs []string, at time.Time) error {
	list := jwt.RevocationList{}
	for _, p := range pubs {
		list[p] = at.Unix()
	}
	return x.Apply(account, list)
}

// Apply merges list (user public key -> Unix time) into account's
// revocations and pushes the re-signed account JWT to the server, which
// closes the connections it names. Every server of a cluster applies the
// lists it watches in the auth bucket.
func (x *Accounts) Apply(account string, list jwt.RevocationList) error {
	if account != AccountUsers && account != AccountNodes {
		return fmt.Errorf("revoke in account %q: only %s and %s take revocations", account, AccountUsers, AccountNodes)
	}
	changed, err := x.a.revoke(account, list)
	if err != nil || !changed {
		return err
	}
	ac := x.claims(account)
	tok, err := ac.Encode(x.a.operator)
	if err != nil {
		return fmt.Errorf("sign account %s: %w", account, err)
	}
	if err := x.resolver.Store(ac.Subject, tok); err != nil {
		return err
	}
	x.mu.Lock()
	ns := x.ns
	x.mu.Unlock()
	if ns == nil {
		return nil
	}
	acc, err := ns.LookupAccount(ac.Subject)
	if err != nil {
		return fmt.Errorf("revoke in account %s: %w", account, err)
	}
	ns.UpdateAccountClaims(acc, ac)
	return nil
}
