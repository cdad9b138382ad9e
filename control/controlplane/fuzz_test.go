package controlplane_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

// FuzzCredentialVerbs sends arbitrary bodies to the auth service's verbs:
// kyb.join (from a connection holding a join token) and the admin's
// tokens.create, users.create and credentials.revoke. Every reply is an
// answer or a 4xx, and the cluster answers afterwards.
func FuzzCredentialVerbs(f *testing.F) {
	verbs := []string{api.SubjectJoin, api.SubjectTokenCreate, api.SubjectUserCreate, api.SubjectRevoke}
	for i := range verbs {
		for _, b := range []string{
			`{}`, `{"name":"n1","publicKey":"UABC"}`, `{"ttl":"-1h"}`, `{"ttl":"100000h"}`, `{"ttl":"1h","description":"` + strings.Repeat("d", 300) + `"}`,
			`{"name":"` + strings.Repeat("a", 4100) + `"}`, `{"kind":"node","name":"n1"}`, `{"kind":"pod","name":"x"}`,
			`{"name":"bob","publicKey":"UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","groups":["Admins"]}`, `[`, ``,
		} {
			f.Add(uint8(i), []byte(b))
		}
	}
	cp, err := controlplane.Start(context.Background(), controlplane.Config{DataDir: f.TempDir(), Listen: "127.0.0.1:0", Sync: "1s"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = cp.Shutdown() })
	creds, _ := cp.Authority().AdminCreds()
	credsOpt, _ := client.CredsOption(creds)
	admin, err := nats.Connect(cp.ClientURL(), credsOpt)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(admin.Close)
	tok, _, err := cp.Tokens().Create(context.Background(), time.Hour, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	boot, err := nats.Connect(cp.ClientURL(), nats.Token(tok))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(boot.Close)
	f.Fuzz(func(t *testing.T, verb uint8, body []byte) {
		subj := verbs[int(verb)%len(verbs)]
		nc := admin
		if subj == api.SubjectJoin {
			nc = boot
		}
		msg, err := nc.RequestMsg(&nats.Msg{Subject: subj, Data: body}, 5*time.Second)
		if err != nil {
			t.Fatalf("%s %q: no reply: %v", subj, body, err)
		}
		if c := msg.Header.Get(micro.ErrorCodeHeader); c != "" {
			if code, _ := strconv.Atoi(c); code < 400 || code >= 500 {
				t.Fatalf("%s %q: code %s: %s", subj, body, c, msg.Header.Get(micro.ErrorHeader))
			}
		}
		if _, err := client.New(admin).Get(context.Background(), "Namespace", "", "default"); err != nil {
			t.Fatalf("the cluster stopped answering after %s %q: %v", subj, body, err)
		}
	})
}
