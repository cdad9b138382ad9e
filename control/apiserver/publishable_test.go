package apiserver

import (
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

// TestPublishable: the subjects the server publishes assignments on are checked, so an object stored around the apiserver
// (with a name no validation let through) cannot cost it its connection.
func TestPublishable(t *testing.T) {
	for _, tc := range []struct {
		subject string
		want    bool
	}{
		{api.AgentSubject("n1", api.AgentVerbPods), true},
		{api.AgentSubject(strings.Repeat("a", 4100), api.AgentVerbPods), false},
		{api.AgentSubject(strings.Repeat("n", 2000), api.AgentVerbPods), false},
		{api.AgentSubject("a b", api.AgentVerbPods), false},
		{api.AgentSubject("*", api.AgentVerbPods), false},
		{api.AgentSubject(">", api.AgentVerbPods), false},
		{api.AgentSubject("", api.AgentVerbPods), false},
		{"", false},
		{"a.", false},
	} {
		if got := publishable(tc.subject); got != tc.want {
			t.Errorf("publishable(%.40q) = %v, want %v", tc.subject, got, tc.want)
		}
	}
}
