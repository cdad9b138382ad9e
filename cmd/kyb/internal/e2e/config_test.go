package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// End to end, with real node credentials: a Secret and a ConfigMap made
// with `kyb create` reach a wasm pod as env and files through the node
// verb; a pod that names a key the ConfigMap lacks waits in
// CreateContainerConfigError naming it and starts once `kyb apply` adds it.
func TestConfigMapAndSecretReachPods(t *testing.T) {
	c, _ := wasmCluster(t)
	c.kyb("create", "secret", "generic", "db", "--from-literal", "password=e2e-s3cret")
	c.kyb("create", "configmap", "app", "--from-literal", "greeting=hello-e2e")
	extra := `    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}
    envFrom: [{prefix: CM_, configMapRef: {name: app}}]
    volumeMounts: [{name: conf, mountPath: /conf}]
  volumes: [{name: conf, configMap: {name: app}}]
`
	c.apply(podManifest("reader", "  runtimeClassName: wasm\n", "kyb://prog", "Never", 1, extra,
		"env", "PW", "env", "CM_greeting", "env", "HOSTNAME", "cat", "/conf/greeting"))
	c.waitPod("reader", 60*time.Second, phaseIs(api.PodSucceeded))
	logs := c.kyb("logs", "reader")
	for _, want := range []string{"PW=e2e-s3cret", "CM_greeting=hello-e2e", "HOSTNAME=reader", "hello-e2e"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs %q lack %q", logs, want)
		}
	}

	waiting := `    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: app, key: mode}}}
`
	c.apply(podManifest("waiter", "  runtimeClassName: wasm\n", "kyb://prog", "Never", 1, waiting, "env", "MODE"))
	c.waitPod("waiter", 30*time.Second, func(p *api.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return fmt.Errorf("not waiting: %s", statusText(p))
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		if w.Reason != "CreateContainerConfigError" || !strings.Contains(w.Message, "mode") || !strings.Contains(w.Message, "app") {
			return fmt.Errorf("waiting %+v, want CreateContainerConfigError naming key mode of ConfigMap app", w)
		}
		return nil
	})
	c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {greeting: hello-e2e, mode: turbo}\n")
	c.waitPod("waiter", 30*time.Second, phaseIs(api.PodSucceeded))
	if logs := c.kyb("logs", "waiter"); !strings.Contains(logs, "MODE=turbo") {
		t.Errorf("logs %q lack MODE=turbo", logs)
	}
}
