package apiserver

import (
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

// TestEveryUserVerbIsRouted checks that each endpoint is in api.APIVerbs
// or api.NodeVerbs: the NATS server routes only those from users and nodes
// to the control plane, so a verb missing there would be unreachable.
func TestEveryUserVerbIsRouted(t *testing.T) {
	routed := map[string]bool{}
	for _, v := range append(append([]api.APIVerb{}, api.APIVerbs...), api.NodeVerbs...) {
		routed[v.Subject] = true
	}
	s := &Server{}
	for _, ep := range s.endpoints() {
		if !routed[ep.subject] {
			t.Errorf("endpoint %s (%s) is not in api.APIVerbs or api.NodeVerbs", ep.name, ep.subject)
		}
	}
}
