package apiserver_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func configMap(name string) *api.ConfigMap {
	return &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"k": name}}
}

// A get or list of the latest state (resourceVersion "") holds a write made
// to the store around this apiserver (as another server's write is) the
// moment it was acknowledged; resourceVersion N waits for revision N.
func TestConsistentReads(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	for i := range 50 {
		name := fmt.Sprintf("around-%d", i)
		if err := e.st.Create(ctx, configMap(name)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.Get(ctx, "ConfigMap", "default", name); err != nil {
			t.Fatalf("get right after a store write: %v", err)
		}
		objs, _, err := e.c.List(ctx, api.ListRequest{Kind: "ConfigMap", FieldSelector: "metadata.name=" + name})
		if err != nil || len(objs) != 1 {
			t.Fatalf("list right after a store write: %d items, %v", len(objs), err)
		}
	}
	// A read at a revision not yet written waits for it.
	last, err := e.st.LastRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := e.c.GetWith(ctx, api.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: "later",
			ResourceVersion: strconv.FormatUint(last+1, 10)})
		got <- err
	}()
	if err := e.st.Create(ctx, configMap("later")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("get at the revision of the next write: %v", err)
	}
	// resourceVersion "0" answers from the cache as it is.
	if _, err := e.c.GetWith(ctx, api.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: "later", ResourceVersion: "0"}); err != nil {
		t.Fatalf("get at resourceVersion 0: %v", err)
	}
}

// A revision the store never reaches is a 504 Timeout Status after the
// bound, not a reply from an older state.
func TestReadAtFutureRevisionTimesOut(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Create(e.ctx, configMap("x")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "ConfigMap", ResourceVersion: "999999999"})
	var st *api.Status
	if !errors.As(err, &st) || st.Code != 504 || st.Reason != api.ReasonTimeout {
		t.Fatalf("list at a future revision: %v; want a 504 Timeout Status", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the 504 came after %v", d)
	}
}

// A resourceVersion that is no revision is a 400 naming the field, for
// gets and lists alike; events take only "" and "0".
func TestReadResourceVersionRefused(t *testing.T) {
	e := newEnv(t)
	for _, rv := range []string{"abc", "-1", "1.5", " 1", strings.Repeat("9", 4096), "0x10"} {
		for _, tc := range []struct {
			subject string
			req     any
		}{
			{api.SubjectGet, api.GetRequest{Kind: "ConfigMap", Name: "x", ResourceVersion: rv}},
			{api.SubjectList, api.ListRequest{Kind: "ConfigMap", ResourceVersion: rv}},
		} {
			t.Run(tc.subject+"/"+rv[:min(len(rv), 8)], func(t *testing.T) {
				body, _ := json.Marshal(tc.req)
				code, st := rawRequest(t, e.nc, tc.subject, body)
				if code != 400 || len(st.Causes) == 0 || st.Causes[0].Field != "resourceVersion" {
					t.Fatalf("resourceVersion %.20q: code %d, %+v; want 400 naming resourceVersion", rv, code, st)
				}
				if strings.Contains(st.Message, strings.Repeat("9", 100)) {
					t.Fatal("the refusal echoes the value")
				}
			})
		}
	}
	body, _ := json.Marshal(api.ListRequest{Kind: "Event", ResourceVersion: "5"})
	if code, st := rawRequest(t, e.nc, api.SubjectList, body); code != 400 || st.Causes[0].Field != "resourceVersion" {
		t.Fatalf("events at resourceVersion 5: %d %+v; want 400", code, st)
	}
	body, _ = json.Marshal(api.ListRequest{Kind: "Event", ResourceVersion: "0"})
	if code, st := rawRequest(t, e.nc, api.SubjectList, body); code != 0 {
		t.Fatalf("events at resourceVersion 0: %d %+v", code, st)
	}
}
