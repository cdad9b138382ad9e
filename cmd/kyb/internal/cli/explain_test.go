package cli

import (
	"strings"
	"testing"
)

// kyb explain needs no server: the docs come from the Go types.
func TestExplainCommand(t *testing.T) {
	out, _, err := kybOut("nats://127.0.0.1:1", "explain", "pod.spec.restartPolicy")
	if err != nil || !strings.Contains(out, "FIELD: restartPolicy <string>") {
		t.Errorf("explain printed %q (%v)", out, err)
	}
	if _, _, err := kybOut("nats://127.0.0.1:1", "explain", "pod.spec.bogus"); err == nil || !strings.Contains(err.Error(), `field "bogus" does not exist in pod.spec`) {
		t.Errorf("explain of a missing field: %v", err)
	}
}
