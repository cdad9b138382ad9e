package apiserver_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// fuzzVerbs are the user verbs FuzzUserVerbs sends bodies to (apply, get,
// list and delete have their own targets on their parse functions).
var fuzzVerbs = []string{
	api.SubjectWatch, api.SubjectLogs, api.NodeSubject("n1", api.NodeVerbEvents), api.SubjectAuthz,
	api.SubjectModulesPush, api.SubjectModulesGet, api.SubjectModulesList,
	api.SubjectModulesUpload + ".0123456789abcdef0123456789abcdef",
	api.NodeSubject("n1", api.NodeVerbModule), api.NodeSubject("n1", api.NodeVerbModuleInfo),
	api.SubjectTop, api.NodeSubject("n1", api.NodeVerbUsage),
}

// FuzzUserVerbs sends arbitrary bodies to every streaming, module and
// authorization verb through a real server, as a client would: the first
// reply must come, be a 4xx (or a 503 for a full stream table) or an
// answer, never a 5xx; and the server must answer a get afterwards.
func FuzzUserVerbs(f *testing.F) {
	for i := range fuzzVerbs {
		for _, b := range []string{
			`{}`, `{"kind":"pod"}`, `{"kind":"pod","resourceVersion":"99999"}`, `{"kind":"pod","resourceVersion":"x"}`,
			`{"kind":"pod","labelSelector":"a in (","fieldSelector":"spec.nope=1"}`,
			`{"pod":"p","tail":-5,"sinceSeq":18446744073709551615}`, `{"pod":"` + strings.Repeat("p", 4100) + `"}`,
			`{"name":"m","size":9,"digest":"sha256:00"}`, `{"name":"../x","offset":-1}`,
			`{"verb":"get","kind":"pods","namespace":"` + strings.Repeat("n", 300) + `"}`, `[`, ``, `null`,
			`{"namespace":"default"}`, `{"namespace":"a.b"}`,
		} {
			f.Add(uint8(i), []byte(b))
		}
	}
	s := testutil.StartNATS(f)
	e := newEnvOn(f, s, apiserver.Config{StreamMaxDuration: time.Second, StreamHeartbeat: 200 * time.Millisecond})
	e.apply(f, podOnNode("p", "n1"))
	nc := testutil.Connect(f, s)
	f.Fuzz(func(t *testing.T, verb uint8, body []byte) {
		subj := fuzzVerbs[int(verb)%len(fuzzVerbs)]
		msg, err := nc.RequestMsg(&nats.Msg{Subject: subj, Data: body}, 5*time.Second)
		if err != nil {
			t.Fatalf("%s %q: no reply: %v", subj, body, err)
		}
		if c := msg.Header.Get(micro.ErrorCodeHeader); c != "" {
			code, _ := strconv.Atoi(c)
			if code < 400 || (code >= 500 && code != 503) {
				t.Fatalf("%s %q: code %d: %s", subj, body, code, msg.Header.Get(micro.ErrorHeader))
			}
		}
		if _, err := e.c.Get(e.ctx, "Pod", "default", "p"); err != nil {
			t.Fatalf("the server stopped answering after %s %q: %v", subj, body, err)
		}
	})
}
