package api

import (
	"strings"
	"testing"
)

func TestValidateWAGIAnnotation(t *testing.T) {
	wasm := RuntimeWasm
	for _, tc := range []struct {
		name, value string
		wasm        bool
		ok          bool
	}{
		{"one", "1", true, true},
		{"max", "1024", true, true},
		{"zero", "0", true, false},
		{"too many", "1025", true, false},
		{"negative", "-3", true, false},
		{"not a number", "eight", true, false},
		{"4 KB", strings.Repeat("9", 4096), true, false},
		{"container pod", "8", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			if tc.wasm {
				p.Spec.RuntimeClassName = &wasm
			}
			p.Annotations = map[string]string{AnnotationWAGIMaxConcurrency: tc.value}
			err := Validate(p)
			if tc.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "metadata.annotations[kyb.dev/wagi-max-concurrency]") {
				t.Fatalf("error %v does not name the annotation", err)
			}
			if err != nil && len(err.Error()) > 1000 {
				t.Fatalf("error echoes the whole value: %d bytes", len(err.Error()))
			}
			if want := 0; !tc.ok && tc.wasm && WAGIMaxConcurrency(p.Annotations) != want {
				t.Fatalf("WAGIMaxConcurrency of a bad value = %d", WAGIMaxConcurrency(p.Annotations))
			}
		})
	}
}
