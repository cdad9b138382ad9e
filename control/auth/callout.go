package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// handleCallout answers one auth callout request of the NATS server. Only
// connections without credentials reach it (through the default sentinel):
// it admits a valid join token into BOOTSTRAP, for kyb.join alone, and
// refuses anything else with a reason the client sees.
func (s *Service) handleCallout(msg *nats.Msg) {
	rc, err := jwt.DecodeAuthorizationRequestClaims(string(msg.Data))
	if err != nil {
		s.log.Warn("auth callout: undecodable request", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp := jwt.NewAuthorizationResponseClaims(rc.UserNkey)
	resp.Audience = rc.Server.ID
	uc, err := s.admitToken(ctx, rc)
	if err != nil {
		s.log.Info("connection refused", "host", rc.ClientInformation.Host, "client", rc.ClientInformation.Name, "reason", err)
		resp.Error = err.Error()
	} else {
		tok, err := uc.Encode(s.a.accounts[AccountBootstrap])
		if err != nil {
			s.log.Error("auth callout: sign user", "err", err)
			resp.Error = "internal error"
		} else {
			resp.Jwt = tok
		}
	}
	out, err := resp.Encode(s.a.accounts[AccountAuth])
	if err != nil {
		s.log.Error("auth callout: sign response", "err", err)
		return
	}
	_ = msg.Respond([]byte(out))
}

// admitToken returns the user of a connection holding a valid join token.
// Its errors are shown to the client: they say what is wrong without
// echoing a secret.
func (s *Service) admitToken(ctx context.Context, rc *jwt.AuthorizationRequestClaims) (*jwt.UserClaims, error) {
	co := rc.ConnectOptions
	if co.Token == "" {
		return nil, errors.New("anonymous connections are refused: connect with credentials (a kyb config, or nats --creds) or a join token")
	}
	p, err := ParseToken(co.Token)
	if err != nil {
		return nil, err
	}
	if p.CAHash != s.a.CAHash() {
		return nil, fmt.Errorf("join token %s is for another cluster (its CA hash differs)", p.ID)
	}
	uc := jwt.NewUserClaims(rc.UserNkey)
	if p.ID == api.ServerTokenID {
		// The server token is checked against the PKI directory, not
		// JetStream, so a first server admits a second one before its
		// JetStream has a quorum.
		if !s.a.checkServerSecret(p.Secret) {
			return nil, fmt.Errorf("join token %s: wrong secret", p.ID)
		}
		uc.Name = BootstrapPrefix + api.ServerTokenID
		// The reply carries the cluster's keys: it goes to an inbox no
		// node-token holder (allowed only _INBOX.>) can subscribe to.
		uc.Permissions.Sub.Allow.Add(api.ServerJoinInbox + ".>")
	} else {
		uc.Permissions.Sub.Allow.Add("_INBOX.>") // a join reply holds only a JWT, useless without its seed
		st := s.authStore()
		if st == nil {
			return nil, errors.New("the control plane is starting (JetStream has no quorum yet); try again")
		}
		tok, err := NewTokens(s.a, st).CheckID(ctx, p.ID, p.Secret)
		if err != nil {
			return nil, err
		}
		uc.Name = BootstrapPrefix + tok.ID
		uc.Expires = tok.Expires.Unix()
	}
	uc.Permissions.Pub.Allow.Add(api.SubjectJoin)
	uc.Limits.Subs = 8
	uc.Limits.Payload = 64 << 10 // what the joiner sends; the reply may be larger
	return uc, nil
}

// Identity is who sent a request, from its Nats-Request-Info header.
type Identity struct {
	// Account is the account name (AccountUsers, AccountNodes, ...); empty
	// for the control plane itself.
	Account string
	// Name is the user's name: "alice", "admin", "system:node:n1",
	// "system:bootstrap:<token id>"; "system:kyb-control-plane" for the
	// control plane.
	Name string
	// Groups are the user's groups, from its credentials.
	Groups []string
	// ControlPlane is true for a request from the control plane's own account.
	ControlPlane bool
}

// ControlPlaneName is the Identity name of the control plane.
const ControlPlaneName = "system:kyb-control-plane"

// Identify returns who sent a request with headers h. A request without
// the header comes from inside the control plane's own account (only the
// control plane logs in there); the NATS server sets the header on every
// request that crosses a shared service import, and a client cannot forge
// it across one.
func (a *Authority) Identify(h nats.Header) (Identity, error) {
	vals, ok := h[natsserver.ClientInfoHdr]
	if !ok {
		return Identity{Name: ControlPlaneName, ControlPlane: true}, nil
	}
	// The server appends the true header, but its removal of a sender's
	// own can be dodged: a second value is a forgery (see control/authn).
	if len(vals) != 1 || vals[0] == "" {
		return Identity{}, fmt.Errorf("%d %s headers: only the NATS server may set it", len(vals), natsserver.ClientInfoHdr)
	}
	v := vals[0]
	var ci natsserver.ClientInfo
	if err := json.Unmarshal([]byte(v), &ci); err != nil {
		return Identity{}, fmt.Errorf("undecodable %s header: %w", natsserver.ClientInfoHdr, err)
	}
	id := Identity{Account: a.AccountName(ci.Account), Name: ci.NameTag}
	if id.Account == "" {
		return Identity{}, fmt.Errorf("request from unknown account %q", ci.Account)
	}
	if id.Account == AccountBootstrap || id.Name == "" {
		// Users placed by the auth callout carry the name it gave them in
		// "user" (name_tag is the sentinel's).
		id.Name = ci.User
	}
	for _, t := range ci.Tags {
		if g, ok := strings.CutPrefix(t, GroupTagPrefix); ok {
			id.Groups = append(id.Groups, g)
		}
	}
	return id, nil
}
