package api

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// TestQuantityRoundTrip checks that quantities parse and print as in
// Kubernetes; the expected strings are apimachinery's own
// (quantity_test.go TestQuantityParseEmit, TestQuantityString,
// quantity_example_test.go).
func TestQuantityRoundTrip(t *testing.T) {
	tests := []struct {
		in, want string
		milli    int64
		value    int64
		unquoted bool // written as a YAML number, not a string
	}{
		{"250m", "250m", 250, 1, false},
		{"0.5", "500m", 500, 1, false},
		{"128Mi", "128Mi", 128 << 20 * 1000, 128 << 20, false},
		{"1G", "1G", 1e12, 1e9, false},
		{"1000M", "1G", 1e12, 1e9, false},
		{"1e3", "1e3", 1e6, 1000, false},
		{"100Ki", "100Ki", 102400 * 1000, 102400, false},
		{"1024Mi", "1Gi", 1 << 30 * 1000, 1 << 30, false},
		{"5300m", "5300m", 5300, 6, false},
		{"5.4", "5400m", 5400, 6, false},
		{".001Ki", "1024m", 1024, 2, false},
		{"1", "1", 1000, 1, false},
		// A bare YAML number is read as a number, as kubectl reads it:
		// 1e3 becomes 1000 before it is a quantity, hence "1k".
		{"1e3", "1k", 1e6, 1000, true},
		{"0.5", "500m", 500, 1, true},
		{"2", "2", 2000, 2, true},
	}
	for _, tt := range tests {
		name, val := tt.in, `"`+tt.in+`"`
		if tt.unquoted {
			name, val = tt.in+" unquoted", tt.in
		}
		t.Run(name, func(t *testing.T) {
			doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n      limits: {memory: " + val + "}\n"
			got, err := Decode([]byte(doc))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			q := got[0].Object.(*Pod).Spec.Containers[0].Resources.Limits[ResourceMemory]
			if q.String() != tt.want {
				t.Errorf("String() = %q, want %q", q.String(), tt.want)
			}
			if q.MilliValue() != tt.milli || q.Value() != tt.value {
				t.Errorf("MilliValue %d Value %d, want %d %d", q.MilliValue(), q.Value(), tt.milli, tt.value)
			}
			// It prints back into JSON the same way.
			b, err := q.MarshalJSON()
			if err != nil || string(b) != `"`+tt.want+`"` {
				t.Errorf("MarshalJSON = %s, %v", b, err)
			}
		})
	}
	if q := resource.NewQuantity(5*1024*1024*1024, resource.BinarySI); q.String() != "5Gi" {
		t.Errorf("5Gi printed as %s", q.String())
	}
}

func TestQuantityRejected(t *testing.T) {
	t.Run("negative is invalid", func(t *testing.T) {
		doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n      requests: {cpu: -250m}\n"
		got, err := Decode([]byte(doc))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		st := asInvalid(t, Validate(got[0].Object))
		if _, ok := causeFor(st, "spec.containers[0].resources.requests.cpu"); !ok {
			t.Errorf("causes %+v", st.Causes)
		}
	})
	for _, bad := range []string{"1.2.3", "12 Mi", "1Qi", "abc", "--1", "1e", "1MiB"} {
		t.Run("malformed "+bad, func(t *testing.T) {
			doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n      limits: {memory: \"" + bad + "\"}\n"
			_, err := Decode([]byte(doc))
			if err == nil {
				t.Fatal("Decode accepted a malformed quantity")
			}
			if !strings.Contains(err.Error(), "spec.containers[0].resources.limits.memory") {
				t.Errorf("error %q does not name the field", err)
			}
		})
	}
}
