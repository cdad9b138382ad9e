package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestPrintDaemonSets(t *testing.T) {
	created := time.Now().Add(-5 * time.Minute)
	sel := &api.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}
	dsets := []api.Object{
		&api.DaemonSet{ObjectMeta: api.ObjectMeta{Name: "agent", Namespace: "default", CreationTimestamp: created},
			Spec: api.DaemonSetSpec{Selector: sel, Template: api.PodTemplateSpec{Spec: api.PodSpec{
				NodeSelector: map[string]string{"role": "edge", "os": "linux"},
				Containers:   []api.Container{{Name: "a", Image: "kyb://agent"}}}}},
			Status: api.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2}},
		&api.DaemonSet{ObjectMeta: api.ObjectMeta{Name: "logs", Namespace: "default", CreationTimestamp: created},
			Spec: api.DaemonSetSpec{Selector: sel}},
	}
	for _, tc := range []struct {
		format string
		header []string
		rows   [][]string
	}{
		{"", []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"}, [][]string{
			{"agent", "3", "3", "2", "1", "2", "os=linux,role=edge", "5m"},
			{"logs", "0", "0", "0", "0", "0", "<none>", "5m"},
		}},
		{"wide", []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"}, [][]string{
			{"agent", "3", "3", "2", "1", "2", "os=linux,role=edge", "5m", "a", "kyb://agent", "app=agent"},
		}},
	} {
		t.Run("format="+tc.format, func(t *testing.T) {
			var out bytes.Buffer
			p, err := newPrinter(&out, tc.format, false)
			if err != nil {
				t.Fatal(err)
			}
			kind, err := api.LookupKind("ds")
			if err != nil {
				t.Fatal(err)
			}
			if err := p.print(kind, dsets); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 3 {
				t.Fatalf("table:\n%s", out.String())
			}
			// Columns are separated by at least two spaces (NODE SELECTOR
			// holds one).
			split := func(l string) []string {
				var f []string
				for _, c := range strings.Split(l, "  ") {
					if c = strings.TrimSpace(c); c != "" {
						f = append(f, c)
					}
				}
				return f
			}
			if got := split(lines[0]); strings.Join(got, "|") != strings.Join(tc.header, "|") {
				t.Fatalf("header %q, want %q", got, tc.header)
			}
			for i, want := range tc.rows {
				if got := split(lines[i+1]); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("row %d %q, want %q", i, got, want)
				}
			}
		})
	}
}
