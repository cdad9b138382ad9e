package events

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/record"
)

// FuzzEventSubject: every event api.ValidateEvent accepts makes a subject
// of four tokens beneath kyb.eventlog, with no wildcard, space or empty
// token, short enough to publish on.
func FuzzEventSubject(f *testing.F) {
	for _, s := range []string{
		`{"involvedObject":{"kind":"Pod","namespace":"default","name":"web"},"type":"Normal","reason":"Started","source":{"component":"kubelet"}}`,
		`{"involvedObject":{"kind":"Node","name":"n1"},"type":"Warning","reason":"X","source":{"component":"c"}}`,
		`{"involvedObject":{"kind":"Pod","namespace":"a.b","name":"*"},"type":"Normal","reason":"R","source":{"component":"c"}}`,
		`{"involvedObject":{"kind":"Role","namespace":"default","name":"system:x"},"type":"Normal","reason":"R","source":{"component":"c"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev api.Event
		if json.Unmarshal(data, &ev) != nil || api.ValidateEvent(&ev) != nil {
			return
		}
		ref := ev.InvolvedObject
		ev.Name = record.EventName(ref, record.FoldKey(ref, ev.Type, ev.Reason, ev.Message, ev.Source))
		subj := subject(&ev)
		toks := strings.Split(subj, ".")
		if len(toks) != 5 || !strings.HasPrefix(subj, api.EventLogPrefix+".") || len(subj) > 200 {
			t.Fatalf("subject %q", subj)
		}
		for _, tok := range toks {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("subject %q has a bad token %q", subj, tok)
			}
		}
	})
}
