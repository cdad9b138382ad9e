package apiserver

import (
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

// TestEveryUserVerbIsRouted checks that each kyb.api.v1 endpoint is in
// api.APIVerbs: the NATS server routes only those from users to the
// control plane, so a verb missing there would be unreachable for users.
func TestEveryUserVerbIsRouted(t *testing.T) {
	routed := map[string]bool{}
	for _, v := range api.APIVerbs {
		routed[v.Subject] = true
	}
	s := &Server{}
	for _, ep := range s.endpoints() {
		if !strings.HasPrefix(ep.subject, api.SubjectPrefix+".") {
			continue
		}
		if !routed[ep.subject] {
			t.Errorf("endpoint %s (%s) is not in api.APIVerbs", ep.name, ep.subject)
		}
	}
}
