package apiserver_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func nsYAML(name, level string) string {
	y := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
	if level != "" {
		y += "  labels:\n    pod-security.kubernetes.io/enforce: " + level + "\n"
	}
	return y
}

// hostRootPod mounts the node's / read-write: the attack of issue 7
// (`hostPath: {path: /}` reads /etc/shadow).
func hostRootPod(ns, name string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\n" +
		"spec:\n  containers:\n  - name: a\n    image: busybox:1.36\n    volumeMounts:\n    - name: root\n      mountPath: /host\n" +
		"  volumes:\n  - name: root\n    hostPath:\n      path: /\n"
}

func TestPodSecurityAdmission(t *testing.T) {
	e := newEnv(t)
	e.apply(t, nsYAML("ops", "privileged")+"---\n"+nsYAML("locked", "restricted")+"---\n"+nsYAML("kyb-system", ""))
	cases := []struct {
		name     string
		manifest string
		code     int      // 0: applied
		fields   []string // each must be a cause's field
		stored   []string // ns/name of pods that must exist afterwards
	}{
		{name: "hostPath / refused in the default (baseline) namespace", manifest: hostRootPod("default", "steal"),
			code: 403, fields: []string{"spec.volumes[0].hostPath"}},
		{name: "hostPath / allowed in a namespace labelled privileged", manifest: hostRootPod("ops", "steal"),
			stored: []string{"ops/steal"}},
		{name: "kyb-system is privileged without a label", manifest: hostRootPod("kyb-system", "agent"),
			stored: []string{"kyb-system/agent"}},
		{name: "a plain pod is refused in a restricted namespace", manifest: podYAML("locked", "plain", nil), code: 403,
			fields: []string{"spec.containers[0].securityContext.allowPrivilegeEscalation", "spec.containers[0].securityContext.capabilities.drop"}},
		{name: "privileged, host namespaces, a low host port and added capabilities at baseline", code: 403,
			manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: root\nspec:\n  hostPID: true\n  containers:\n  - name: a\n    image: busybox:1.36\n" +
				"    ports:\n    - containerPort: 80\n      hostPort: 80\n    securityContext:\n      privileged: true\n      capabilities:\n        add: [SYS_ADMIN]\n",
			fields: []string{"spec.hostPID", "spec.containers[0].ports[0].hostPort", "spec.containers[0].securityContext.privileged", "spec.containers[0].securityContext.capabilities.add[0]"}},
		{name: "a multi-document apply with one forbidden pod stores nothing", code: 403,
			manifest: podYAML("default", "fine", nil) + "---\n" + hostRootPod("default", "steal2"),
			fields:   []string{"documents[1].spec.volumes[0].hostPath"}},
		{name: "a namespace applied with its pods counts with its new label", manifest: nsYAML("fresh", "privileged") + "---\n" + hostRootPod("fresh", "steal3"),
			stored: []string{"fresh/steal3"}},
		{name: "relabelled to baseline in the same apply, the pod is refused", code: 403,
			manifest: nsYAML("ops", "baseline") + "---\n" + hostRootPod("ops", "steal4"),
			fields:   []string{"documents[1].spec.volumes[0].hostPath"}},
		{name: "an invalid level is refused when the namespace is applied", manifest: nsYAML("odd", "lenient"), code: 422,
			fields: []string{"metadata.labels[pod-security.kubernetes.io/enforce]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods", AllNamespaces: true})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.c.Apply(e.ctx, []byte(tc.manifest))
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
				for _, key := range tc.stored {
					ns, name, _ := strings.Cut(key, "/")
					e.pod(t, ns, name)
				}
				return
			}
			var st *api.Status
			if !errors.As(err, &st) {
				t.Fatalf("apply: want *api.Status, got %T %v", err, err)
			}
			t.Logf("%d %s", st.Code, st.Message)
			if st.Code != tc.code {
				t.Fatalf("code %d %s (%s), want %d", st.Code, st.Reason, st.Message, tc.code)
			}
			if tc.code == 403 && st.Reason != api.ReasonForbidden {
				t.Errorf("reason %s, want Forbidden", st.Reason)
			}
			for _, f := range tc.fields {
				if !slices.ContainsFunc(st.Causes, func(c api.StatusCause) bool { return c.Field == f }) {
					t.Errorf("no cause with field %q in %+v", f, st.Causes)
				}
				if !strings.Contains(st.Message, strings.TrimPrefix(f, "documents[1].")) {
					t.Errorf("message %q does not name %s", st.Message, f)
				}
			}
			after, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods", AllNamespaces: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("a refused apply changed the pods: %d before, %d after", len(before), len(after))
			}
		})
	}
	// A pod that meets restricted runs there, and what it asked for is
	// stored, not dropped.
	e.apply(t, `apiVersion: v1
kind: Pod
metadata:
  name: tight
  namespace: locked
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    fsGroup: 2000
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: a
    image: busybox:1.36
    ports:
    - containerPort: 8080
      hostPort: 18080
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: [ALL]
        add: [NET_BIND_SERVICE]
`)
	tight := e.pod(t, "locked", "tight")
	if sc := tight.Spec.SecurityContext; sc == nil || *sc.RunAsUser != 1000 || *sc.FSGroup != 2000 || sc.SeccompProfile.Type != api.SeccompProfileRuntimeDefault {
		t.Errorf("stored pod securityContext = %+v", sc)
	}
	if sc := tight.Spec.Containers[0].SecurityContext; sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
		!slices.Equal(sc.Capabilities.Drop, []api.Capability{"ALL"}) || sc.ProcMount == nil || *sc.ProcMount != api.ProcMountDefault {
		t.Errorf("stored container securityContext = %+v", sc)
	}
	// The refused relabel did not happen either.
	ns, err := e.c.Get(e.ctx, "namespace", "", "ops")
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.GetObjectMeta().Labels[api.LabelPodSecurityEnforce]; got != "privileged" {
		t.Errorf("namespace ops enforce label = %q after a refused apply, want privileged", got)
	}
}
