package apiserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

const daemonSetYAML = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: default
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: a
        image: kyb://agent
`

// A DaemonSet applied twice is unchanged (its defaulted daemon
// tolerations and the controller's status are kept), its applied status
// is dropped, and a bad one is a 422 naming the field.
func TestApplyDaemonSet(t *testing.T) {
	e := newEnv(t)
	withStatus := daemonSetYAML + "status:\n  numberReady: 7\n"
	r := e.apply(t, withStatus)
	if got := actions(r); len(got) != 1 || got[0] != "DaemonSet/agent created" {
		t.Fatalf("apply: %v", got)
	}
	obj, err := e.st.Get(e.ctx, api.KindOf(&api.DaemonSet{}), "default", "agent")
	if err != nil {
		t.Fatal(err)
	}
	ds := obj.(*api.DaemonSet)
	if ds.Status.NumberReady != 0 {
		t.Fatalf("applied status kept: %+v", ds.Status)
	}
	for _, tol := range ds.Spec.Template.Spec.Tolerations {
		if tol.TolerationSeconds != nil {
			t.Fatalf("template has a bounded toleration: %+v", tol)
		}
	}
	// The controller writes status; a re-apply keeps it and is unchanged.
	ds.Status.DesiredNumberScheduled = 3
	if err := e.st.Update(e.ctx, ds); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		r := e.apply(t, daemonSetYAML)
		if got := r.Results[0].Action; got != api.ActionUnchanged {
			return fmt.Errorf("re-apply: %s, want unchanged", got)
		}
		return nil
	})
	obj, _ = e.st.Get(e.ctx, api.KindOf(&api.DaemonSet{}), "default", "agent")
	if got := obj.(*api.DaemonSet).Status.DesiredNumberScheduled; got != 3 {
		t.Fatalf("re-apply lost the status: desired %d", got)
	}
	for _, tc := range []struct{ from, to, field string }{
		{"{app: agent}\n  template:\n    metadata:\n      labels: {app: agent}", "{app: agent, tier: x}\n  template:\n    metadata:\n      labels: {app: agent, tier: x}", "spec.selector"},
		{"spec:\n  selector:", "spec:\n  updateStrategy: {type: Recreate}\n  selector:", "spec.updateStrategy.type"},
		{"spec:\n  selector:", "spec:\n  minReadySeconds: -1\n  selector:", "spec.minReadySeconds"},
	} {
		_, err := e.c.Apply(e.ctx, []byte(strings.Replace(daemonSetYAML, tc.from, tc.to, 1)))
		wantCode(t, tc.field, err, 422, tc.field)
	}
	// Pod Security admits the template as a pod: a host-network daemon is
	// refused in the default (baseline) namespace.
	hostNet := strings.Replace(strings.Replace(daemonSetYAML, "name: agent\n", "name: netd\n", 1), "    spec:\n", "    spec:\n      hostNetwork: true\n", 1)
	_, err = e.c.Apply(e.ctx, []byte(hostNet))
	wantCode(t, "host-network daemon at baseline", err, 403, "spec.template.spec.hostNetwork")
}
