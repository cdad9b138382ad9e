package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/kybernetes/kybernetes/api"
)

// principal is who a connection authenticated as, and where it goes.
type principal struct {
	name    string // admin, alice, system:node:n1, system:bootstrap:abc123
	account string
	perms   jwt.Permissions
	expires int64 // Unix seconds; 0 for none
}

// authenticate decides who the connection of rc is. Its errors are shown
// to the client, so they say what is wrong but never echo a secret.
func (s *Service) authenticate(ctx context.Context, rc *jwt.AuthorizationRequestClaims) (*principal, error) {
	co := rc.ConnectOptions
	switch {
	case co.JWT != "":
		return s.authCreds(ctx, rc)
	case co.Token != "":
		p, err := ParseToken(co.Token)
		if err != nil {
			return nil, err
		}
		tok, err := s.tokens.CheckID(ctx, p.ID, p.Secret)
		if err != nil {
			return nil, err
		}
		if p.CAHash != s.a.CAHash() {
			return nil, fmt.Errorf("join token %s is for another cluster (its CA hash differs)", p.ID)
		}
		return &principal{
			name:    BootstrapPrefix + tok.ID,
			account: AccountBootstrap,
			perms: jwt.Permissions{
				Pub: jwt.Permission{Allow: jwt.StringList{api.SubjectJoin}},
				Sub: jwt.Permission{Allow: jwt.StringList{"_INBOX.>"}},
			},
			expires: tok.Expires.Unix(),
		}, nil
	default:
		return nil, errors.New("anonymous connections are refused: connect with credentials (kyb config, or nats --creds) or a join token")
	}
}

func (s *Service) authCreds(ctx context.Context, rc *jwt.AuthorizationRequestClaims) (*principal, error) {
	co := rc.ConnectOptions
	uc, err := jwt.DecodeUserClaims(co.JWT)
	if err != nil {
		return nil, fmt.Errorf("credentials: %v", err)
	}
	if uc.Issuer != s.a.pub {
		return nil, errors.New("credentials were not issued by this cluster")
	}
	vr := jwt.CreateValidationResults()
	uc.Validate(vr)
	if vr.IsBlocking(true) {
		return nil, fmt.Errorf("credentials of %s: %v", uc.Name, vr.Errors())
	}
	if uc.Expires != 0 && time.Now().Unix() >= uc.Expires {
		return nil, fmt.Errorf("credentials of %s expired", uc.Name)
	}
	// The client proves it holds the key the JWT was issued to by signing
	// the server's nonce with it.
	sig, err := base64.RawURLEncoding.DecodeString(co.SignedNonce)
	if err != nil {
		sig, err = base64.StdEncoding.DecodeString(co.SignedNonce)
	}
	if err != nil || rc.ClientInformation.Nonce == "" {
		return nil, fmt.Errorf("credentials of %s: no signed nonce (use a .creds file, not the bare JWT)", uc.Name)
	}
	pk, err := nkeys.FromPublicKey(uc.Subject)
	if err != nil || pk.Verify([]byte(rc.ClientInformation.Nonce), sig) != nil {
		return nil, fmt.Errorf("credentials of %s: the nonce signature does not match the credentials' key", uc.Name)
	}
	at, revoked, err := s.st.RevokedAt(ctx, uc.Name)
	if err != nil {
		return nil, err
	}
	if revoked && uc.IssuedAt <= at {
		return nil, fmt.Errorf("credentials of %s were revoked", uc.Name)
	}
	switch {
	case uc.Tags.Contains(tagNode) && strings.HasPrefix(uc.Name, NodePrefix):
		node := strings.TrimPrefix(uc.Name, NodePrefix)
		if ValidName(node) != nil {
			return nil, fmt.Errorf("credentials name an invalid node %q", node)
		}
		return &principal{name: uc.Name, account: AccountNodes, perms: NodePermissions(node), expires: uc.Expires}, nil
	case uc.Tags.Contains(tagUser):
		if ValidName(uc.Name) != nil {
			return nil, fmt.Errorf("credentials name an invalid user %q", uc.Name)
		}
		return &principal{name: uc.Name, account: AccountUsers, perms: s.userPermissions(uc.Name, uc.Tags.Contains(tagAnyInbox)), expires: uc.Expires}, nil
	}
	return nil, fmt.Errorf("credentials of %s are neither a user's nor a node's", uc.Name)
}

// NodePermissions are what node name may publish and subscribe to.
func NodePermissions(name string) jwt.Permissions {
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{
			"kyb.node." + name + ".>",
			"kyb.logs." + name + ".>",
			"kyb.podevents." + name + ".>",
		}},
		Sub: jwt.Permission{Allow: jwt.StringList{
			"kyb.agent." + name + ".>",
			InboxPrefix(name) + ".>",
		}},
	}
}

// InboxPrefix is the reply inbox prefix of a user or node other than the
// admin: only that principal may subscribe beneath it.
func InboxPrefix(name string) string { return "_INBOX_" + name }

func (s *Service) userPermissions(name string, anyInbox bool) jwt.Permissions {
	pub := jwt.StringList{"$SRV.>"}
	for _, e := range s.api {
		pub = append(pub, e.Subject)
	}
	sub := jwt.StringList{InboxPrefix(name) + ".>"}
	if anyInbox {
		sub = append(sub, "_INBOX.>")
	}
	return jwt.Permissions{Pub: jwt.Permission{Allow: pub}, Sub: jwt.Permission{Allow: sub}}
}

// handleCallout answers one auth callout request of the NATS server.
func (s *Service) handleCallout(msg *nats.Msg) {
	rc, err := jwt.DecodeAuthorizationRequestClaims(string(msg.Data))
	if err != nil {
		s.log.Warn("auth callout: undecodable request", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := s.authenticate(ctx, rc)
	resp := jwt.NewAuthorizationResponseClaims(rc.UserNkey)
	resp.Audience = rc.Server.ID
	if err != nil {
		s.log.Info("connection refused", "host", rc.ClientInformation.Host, "client", rc.ClientInformation.Name, "reason", err)
		resp.Error = err.Error()
	} else {
		uc := jwt.NewUserClaims(rc.UserNkey)
		uc.Name = p.name
		uc.Audience = p.account
		uc.Permissions = p.perms
		uc.Expires = p.expires
		if p.account == AccountBootstrap {
			uc.Limits.Subs = 8
			uc.Limits.Payload = 64 << 10
		}
		tok, err := uc.Encode(s.a.issuer)
		if err != nil {
			resp.Error = "internal error: sign user"
			s.log.Error("auth callout: sign user", "err", err)
		} else {
			resp.Jwt = tok
		}
	}
	out, err := resp.Encode(s.a.issuer)
	if err != nil {
		s.log.Error("auth callout: sign response", "err", err)
		return
	}
	_ = msg.Respond([]byte(out))
}

// disconnect closes every live connection of principal name in account.
func (s *Service) disconnect(account, name string) {
	if s.ns == nil {
		return
	}
	cz, err := s.ns.Connz(&natsserver.ConnzOptions{Account: account, User: name, Username: true, Limit: 1 << 16})
	if err != nil {
		s.log.Warn("list connections to close", "principal", name, "err", err)
		return
	}
	for _, c := range cz.Conns {
		if c.AuthorizedUser == name {
			_ = s.ns.DisconnectClientByID(c.Cid)
		}
	}
}
