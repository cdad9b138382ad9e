package apiserver_test

import (
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

const jobYAML = `apiVersion: batch/v1
kind: Job
metadata:
  name: batch
  namespace: default
spec:
  completions: 3
  template:
    spec:
      runtimeClassName: wasm
      restartPolicy: Never
      containers:
      - name: work
        image: kyb://prog
`

// Jobs are in API group batch: view may read them, edit may write them.
func TestRBACJobsAreBatchResources(t *testing.T) {
	e := newEnv(t)
	e.apply(t, jobYAML)
	viewer, editor := userP("vera"), userP("ed")
	get := api.GetRequest{Kind: "jobs", Namespace: "default", Name: "batch"}
	_, err := e.reqJSON(t, viewer, api.SubjectGet, get)
	wantCode(t, "get a job without a binding", err, 403, `cannot get resource "jobs"`)
	e.grantEventually(t, roleBindingYAML("default", "vera-view", "ClusterRole", "view", "vera"), func() error {
		_, err := e.reqJSON(t, viewer, api.SubjectGet, get)
		return err
	})
	_, err = e.req(t, viewer, api.SubjectApply, []byte(replaceName(jobYAML, "batch2")))
	wantCode(t, "apply a job as view", err, 403, `cannot create resource "jobs"`)
	e.grantEventually(t, roleBindingYAML("default", "ed-edit", "ClusterRole", "edit", "ed"), func() error {
		_, err := e.reqJSON(t, editor, api.SubjectGet, get)
		return err
	})
	if _, err := e.req(t, editor, api.SubjectApply, []byte(replaceName(jobYAML, "batch3"))); err != nil {
		t.Fatalf("apply a job as edit: %v", err)
	}
	// A status in the manifest is the cluster's to write: dropped.
	withStatus := replaceName(jobYAML, "batch4") + "status:\n  succeeded: 3\n  conditions:\n  - type: Complete\n    status: \"True\"\n"
	if _, err := e.req(t, editor, api.SubjectApply, []byte(withStatus)); err != nil {
		t.Fatal(err)
	}
	o, err := e.c.Get(e.ctx, "job", "default", "batch4")
	if err != nil {
		t.Fatal(err)
	}
	if j := o.(*api.Job); j.Status.Succeeded != 0 || len(j.Status.Conditions) != 0 {
		t.Errorf("applied status kept: %+v", j.Status)
	}
}

func replaceName(manifest, name string) string {
	return strings.Replace(manifest, "  name: batch\n", "  name: "+name+"\n", 1)
}
