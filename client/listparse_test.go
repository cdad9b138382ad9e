package client

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestParseList(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		rv    string
		items []string
		cont  string
	}{
		{"compact", `{"kind":"PodList","resourceVersion":"7","items":[{"a":1},{"b":"x]}"}],"continue":"default/p1"}`, "7", []string{`{"a":1}`, `{"b":"x]}"}`}, "default/p1"},
		{"spaced", "{ \"resourceVersion\" : \"8\" ,\n \"items\" : [ {\"a\":[1,2]} , {\"s\":\"q\\\"}\"} ] }", "8", []string{`{"a":[1,2]}`, `{"s":"q\"}"}`}, ""},
		{"empty", `{"kind":"PodList","resourceVersion":"1","items":[]}`, "1", nil, ""},
		{"null items", `{"resourceVersion":"1","items":null}`, "1", nil, ""},
		{"escaped key", `{"resource\u0056ersion":"3","items":[1,true,"s"]}`, "3", []string{"1", "true", `"s"`}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseList([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range p.items {
				got = append(got, string(it))
			}
			if p.rv != tc.rv || p.cont != tc.cont || !slices.Equal(got, tc.items) {
				t.Fatalf("got rv %q cont %q items %q", p.rv, p.cont, got)
			}
			// The same as encoding/json says.
			var r struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal([]byte(tc.in), &r); err != nil || len(r.Items) != len(got) {
				t.Fatalf("encoding/json: %d items, %v", len(r.Items), err)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"items":[{"a":1}`, `{"items":[1 2]}`, `{"resourceVersion":5`} {
		if _, err := parseList([]byte(bad)); err == nil {
			t.Errorf("parseList(%q): no error", bad)
		}
	}
}
