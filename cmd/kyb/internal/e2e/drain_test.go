package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// TestCordonAndDrain: a cordoned node takes no new pod; drain refuses pods
// no controller manages unless --force, then evicts them within their grace
// period and waits until they are gone; uncordon lets the pending pod in.
func TestCordonAndDrain(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(wasmPod("a", "kyb://prog", "Always", "sleep", "forever"))
	c.waitPod("a", 60*time.Second, phaseIs(api.PodRunning))

	if out := c.kyb("cordon", "wasm-1"); !strings.Contains(out, "node/wasm-1 cordoned") {
		t.Fatalf("cordon printed %q", out)
	}
	if n, err := c.node("wasm-1"); err != nil || !n.Spec.Unschedulable || !n.IsReady() {
		t.Fatalf("node after cordon: %+v %v; want unschedulable and still Ready", n, err)
	}
	c.apply(wasmPod("b", "kyb://prog", "Always", "sleep", "forever"))
	c.waitPod("b", 10*time.Second, func(p *api.Pod) error {
		if p.Spec.NodeName != "" {
			return fmt.Errorf("pod b bound to %s on a cordoned node", p.Spec.NodeName)
		}
		if cond := podCondition(p, "PodScheduled"); cond == nil || cond.Status != api.ConditionFalse {
			return fmt.Errorf("pod b not yet marked unschedulable: %s", statusText(p))
		}
		return nil
	})

	out, _, err := c.kybErr("drain", "wasm-1")
	if err == nil || !strings.Contains(err.Error(), "default/a") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("drain without --force: %q %v; want a refusal naming default/a", out, err)
	}
	if _, err := c.pod("a"); err != nil {
		t.Fatalf("pod a after the refused drain: %v", err)
	}
	if out := c.kyb("drain", "wasm-1", "--force", "--grace-period", "1", "--timeout", "60s"); !strings.Contains(out, "node/wasm-1 drained") {
		t.Fatalf("drain printed %q", out)
	}
	if _, err := c.pod("a"); !api.IsNotFound(err) {
		t.Fatalf("pod a after drain: %v, want it gone", err)
	}

	if out := c.kyb("uncordon", "wasm-1"); !strings.Contains(out, "node/wasm-1 uncordoned") {
		t.Fatalf("uncordon printed %q", out)
	}
	c.waitPod("b", 60*time.Second, phaseIs(api.PodRunning))
}

func podCondition(p *api.Pod, typ string) *api.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
