package api

import (
	"errors"
	"strings"
	"testing"
)

func causesOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var st *Status
	if !errors.As(err, &st) || st.Code != 422 {
		t.Fatalf("error %v: want a 422 Status", err)
	}
	var out []string
	for _, c := range st.Causes {
		out = append(out, c.Field+": "+c.Message)
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	big := strings.Repeat("x", MaxConfigSize)
	for _, tc := range []struct {
		name string
		yaml string
		want string // a substring of one cause; "" means valid
	}{
		{"configmap ok", "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a.b}\ndata: {k.1: v, K_2: w}\nbinaryData: {bin: AAE=}", ""},
		{"configmap bad key", "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\ndata: {'a/b': v}", "data[a/b]"},
		{"configmap dup in binaryData", "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\ndata: {k: v}\nbinaryData: {k: AA==}", "binaryData[k]: duplicate"},
		{"configmap too big", "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\ndata: {k: " + big + "}", "must have at most 1048576 bytes"},
		{"secret ok", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ndata: {k: dg==}\nstringData: {p: q}", ""},
		{"secret bad key", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\nstringData: {'..': q}", "data[..]"},
		{"secret too big", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\nstringData: {k: " + big + "}", `Secret "s" has`},
		{"dockerconfigjson missing", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ntype: kubernetes.io/dockerconfigjson\nstringData: {x: 'y'}", "data[.dockerconfigjson]: required"},
		{"dockerconfigjson bad json", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{'}", "valid JSON"},
		{"dockerconfigjson ok", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{\"auths\":{}}'}", ""},
		{"basic-auth empty", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ntype: kubernetes.io/basic-auth", "must hold \"username\" or \"password\""},
		{"tls missing key", "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ntype: kubernetes.io/tls\nstringData: {tls.crt: c}", "data[tls.key]: required"},
		{"pod env sources ok", `kind: Pod
apiVersion: v1
metadata: {name: p}
spec:
  containers:
  - name: c
    image: i
    env:
    - {name: A, valueFrom: {configMapKeyRef: {name: cm, key: k}}}
    - {name: B, valueFrom: {secretKeyRef: {name: s, key: k, optional: true}}}
    - {name: C, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: D, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    envFrom: [{prefix: X_, configMapRef: {name: cm}}, {secretRef: {name: s}}]
  imagePullSecrets: [{name: reg}]
  volumes:
  - {name: a, configMap: {name: cm, items: [{key: k, path: sub/k}], defaultMode: 0400}}
  - {name: b, secret: {secretName: s}}
  - {name: d, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory}}]}}
  - {name: e, projected: {sources: [{configMap: {name: cm}}, {secret: {name: s}}]}}`, ""},
		{"env two sources", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, env: [{name: A, valueFrom: {configMapKeyRef: {name: cm, key: k}, secretKeyRef: {name: s, key: k}}}]}]", "spec.containers[0].env[0].valueFrom: must specify exactly one"},
		{"env value and valueFrom", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}]", "may not be specified when `value`"},
		{"env bad fieldPath", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, env: [{name: A, valueFrom: {fieldRef: {fieldPath: spec.containers}}}]}]", "env[0].valueFrom.fieldRef.fieldPath: unsupported value"},
		{"env bad resource", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.gpu}}}]}]", "resourceFieldRef.resource"},
		{"env cpu divisor", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 2}}}]}]", "divisor"},
		{"env bad key", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: 'a b'}}}]}]", "secretKeyRef.key"},
		{"envFrom none", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, envFrom: [{prefix: X}]}]", "envFrom[0]: must specify exactly one"},
		{"volume path escapes", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, configMap: {name: cm, items: [{key: k, path: ../../etc/passwd}]}}]\n  containers: [{name: c, image: i}]", "items[0].path: must not contain '..'"},
		{"volume absolute path", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, secret: {secretName: s, items: [{key: k, path: /x}]}}]\n  containers: [{name: c, image: i}]", "must be a relative path"},
		{"volume bad mode", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, secret: {secretName: s, defaultMode: 4096}}]\n  containers: [{name: c, image: i}]", "secret.defaultMode"},
		{"secret volume no name", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, secret: {}}]\n  containers: [{name: c, image: i}]", "secret.secretName: required"},
		{"projected token refused", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, projected: {sources: [{serviceAccountToken: {path: t}}]}}]\n  containers: [{name: c, image: i}]", "serviceAccountToken: not implemented"},
		{"downward resource needs container", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, downwardAPI: {items: [{path: m, resourceFieldRef: {resource: limits.memory}}]}}]\n  containers: [{name: c, image: i}]", "containerName: required"},
		{"pull secret name", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  imagePullSecrets: [{name: 'Bad_Name'}]\n  containers: [{name: c, image: i}]", "imagePullSecrets[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := Decode([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			obj := ds[0].Object
			Default(obj)
			causes := causesOf(t, Validate(obj))
			if tc.want == "" {
				if len(causes) > 0 {
					t.Fatalf("want valid, got %q", causes)
				}
				return
			}
			for _, c := range causes {
				if strings.Contains(c, tc.want) {
					return
				}
			}
			t.Fatalf("causes %q: none holds %q", causes, tc.want)
		})
	}
}

func TestSecretDefaultsMergeStringData(t *testing.T) {
	s := &Secret{ObjectMeta: ObjectMeta{Name: "s"}, Data: map[string][]byte{"a": []byte("1"), "b": []byte("2")}, StringData: map[string]string{"b": "two"}}
	Default(s)
	if s.Type != SecretTypeOpaque || s.StringData != nil || string(s.Data["a"]) != "1" || string(s.Data["b"]) != "two" {
		t.Fatalf("defaulted = %+v", s)
	}
}

func TestConfigImmutable(t *testing.T) {
	yes := true
	cm := &ConfigMap{ObjectMeta: ObjectMeta{Name: "c", Namespace: "default"}, Immutable: &yes, Data: map[string]string{"k": "v"}}
	changed := DeepCopy(cm)
	changed.Data["k"] = "w"
	if c := causesOf(t, ValidateUpdate(cm, changed)); len(c) != 1 || !strings.Contains(c[0], "data: field is immutable") {
		t.Fatalf("changed immutable ConfigMap: %q", c)
	}
	unset := DeepCopy(cm)
	unset.Immutable = nil
	if c := causesOf(t, ValidateUpdate(cm, unset)); len(c) != 1 || !strings.Contains(c[0], "immutable: field is immutable") {
		t.Fatalf("unset immutable: %q", c)
	}
	labels := DeepCopy(cm)
	labels.Labels = map[string]string{"a": "b"}
	if err := ValidateUpdate(cm, labels); err != nil {
		t.Fatalf("label change of an immutable ConfigMap: %v", err)
	}
	s := &Secret{ObjectMeta: ObjectMeta{Name: "s", Namespace: "default"}, Immutable: &yes, Type: SecretTypeOpaque, Data: map[string][]byte{"k": []byte("v")}}
	ns := DeepCopy(s)
	ns.StringData = map[string]string{"k": "other"}
	if c := causesOf(t, ValidateUpdate(s, ns)); len(c) != 1 || !strings.Contains(c[0], "data: field is immutable") {
		t.Fatalf("changed immutable Secret: %q", c)
	}
	typed := DeepCopy(s)
	typed.Immutable = nil
	s.Immutable = nil
	typed.Type = SecretTypeBasicAuth
	typed.StringData = map[string]string{"username": "u"}
	if c := causesOf(t, ValidateUpdate(s, typed)); len(c) != 1 || !strings.Contains(c[0], "type: field is immutable") {
		t.Fatalf("changed type: %q", c)
	}
}

func TestConfigRefs(t *testing.T) {
	ds, err := Decode([]byte(`kind: Pod
apiVersion: v1
metadata: {name: p}
spec:
  imagePullSecrets: [{name: reg}]
  initContainers: [{name: i, image: i, envFrom: [{configMapRef: {name: cm1}}]}]
  containers: [{name: c, image: i, env: [{name: A, valueFrom: {secretKeyRef: {name: s1, key: k}}}, {name: B, valueFrom: {configMapKeyRef: {name: cm1, key: k}}}]}]
  volumes: [{name: v, projected: {sources: [{secret: {name: s2}}, {configMap: {name: cm2}}]}}, {name: w, secret: {secretName: s3}}]`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range ConfigRefs(&ds[0].Object.(*Pod).Spec) {
		got = append(got, r.Kind+"/"+r.Name)
	}
	want := "Secret/reg ConfigMap/cm1 Secret/s1 Secret/s2 ConfigMap/cm2 Secret/s3"
	if strings.Join(got, " ") != want {
		t.Fatalf("ConfigRefs = %q, want %q", got, want)
	}
}

// subPath is refused, not dropped: without it a configMap volume would be
// mounted whole where the manifest expects one file.
func TestSubPathRefused(t *testing.T) {
	_, err := Decode([]byte("kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, configMap: {name: cm}}]\n  containers: [{name: c, image: i, volumeMounts: [{name: v, mountPath: /etc/nginx/nginx.conf, subPath: nginx.conf}]}]\n"))
	var st *Status
	if !errors.As(err, &st) || st.Code != 422 || len(st.Causes) != 1 || st.Causes[0].Field != "spec.containers[0].volumeMounts[0].subPath" {
		t.Fatalf("subPath: %v, want a 422 naming it", err)
	}
}
