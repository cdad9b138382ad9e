package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// The agent's ServiceEnv: the service variables of a pod bound to it, from
// the node's services cache (its servicewatch); only the pod's namespace's
// Services, and they follow a deletion.
func TestAgentServiceEnv(t *testing.T) {
	e := newEnv(t)
	rt, err := fake.New(fake.Config{Name: api.RuntimeContainerd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := node.New(node.Config{Name: "n1", DataDir: t.TempDir(), HeartbeatInterval: 200 * time.Millisecond},
		testutil.Connect(t, e.ns), map[string]runtimes.Runtime{api.RuntimeContainerd: rt}, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go func() { _ = agent.Run(ctx) }()
	select {
	case <-agent.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
	svc, err := e.applySvc(t, svcYAML("redis-primary", "", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, podYAML("", "web", nil))
	e.bind(t, "default", "web", "n1")
	pod := e.pod(t, "default", "web")
	testutil.Eventually(t, 5*time.Second, func() error {
		env, err := agent.ServiceEnv(ctx, pod)
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, v := range env {
			got[v.Name] = v.Value
		}
		if got["REDIS_PRIMARY_SERVICE_HOST"] != svc.Spec.ClusterIP || got["REDIS_PRIMARY_PORT_80_TCP"] != "tcp://"+svc.Spec.ClusterIP+":80" {
			return fmt.Errorf("env %v", got)
		}
		return nil
	})
	// Another namespace's pod does not see default's Services.
	other := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "x", Namespace: "elsewhere"}}
	env, err := agent.ServiceEnv(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range env {
		if strings.HasPrefix(v.Name, "REDIS_PRIMARY_") {
			t.Fatalf("a pod of namespace elsewhere got %s", v.Name)
		}
	}
	// A Service deleted leaves the variables of the next start.
	if _, err := e.c.Delete(ctx, api.DeleteRequest{Kind: "service", Name: "redis-primary"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		env, err := agent.ServiceEnv(ctx, pod)
		if err != nil {
			return err
		}
		for _, v := range env {
			if strings.HasPrefix(v.Name, "REDIS_PRIMARY_") {
				return fmt.Errorf("still %s after the Service was deleted", v.Name)
			}
		}
		return nil
	})
}
