package api

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fuzzing reports whether the test binary runs a fuzzer (-test.fuzz), not
// only its seed corpus. Time bounds are only checked then: under plain
// `go test` a loaded machine must not fail a test.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// hangAfter is when, while fuzzing, an input that is still being handled
// crashes the fuzzing worker: Go's fuzzer does not notice a hang by
// itself, but saves the input of a worker that crashes.
const hangAfter = 10 * time.Second

// watchdog panics, from its own goroutine, when the returned stop function
// is not called within hangAfter; it does nothing unless fuzzing.
func watchdog(data []byte) (stop func()) {
	if !fuzzing() {
		return func() {}
	}
	t := time.AfterFunc(hangAfter, func() {
		head := data
		if len(head) > 256 {
			head = head[:256]
		}
		panic(fmt.Sprintf("input of %d bytes still running after %v (hang): %q", len(data), hangAfter, head))
	})
	return func() { t.Stop() }
}

// slowInput is how long a small manifest may take to decode, default and
// validate while fuzzing: far above what a sane input needs (well under a
// millisecond), far below what a pathological one takes.
const slowInput = 2 * time.Second

// FuzzDecode feeds manifests (YAML and JSON, multi-document, Lists) to
// Decode, then defaults and validates what it returns, as the apiserver
// does. Nothing may panic; an error must be a 400 *Status; every object
// must have a kind; and, while fuzzing, a small input must not take
// pathological time. The seed corpus is testdata/fuzz/FuzzDecode. CI runs
// it briefly with
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s ./api
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		start := time.Now()
		objs, err := Decode(data)
		if err != nil {
			var st *Status
			// 400 for what does not decode; 422 with causes for fields
			// kybernetes refuses rather than ignores.
			if !errors.As(err, &st) || (st.Code != 400 && (st.Code != 422 || len(st.Causes) == 0)) {
				t.Fatalf("Decode error %v (%T), want a 400 or a 422 with causes", err, err)
			}
			if objs != nil {
				t.Fatalf("Decode returned %d objects with an error", len(objs))
			}
		}
		for i, d := range objs {
			if d.Object == nil || d.Kind == nil || KindOf(d.Object) != d.Kind {
				t.Fatalf("object %d: %T of kind %v", i, d.Object, d.Kind)
			}
			Default(d.Object)
			if err := Validate(d.Object); err != nil {
				var st *Status
				if !errors.As(err, &st) || st.Code != 422 || len(st.Causes) == 0 {
					t.Fatalf("object %d: Validate error %v, want a 422 *Status with causes", i, err)
				}
			}
			_ = DeepCopy(d.Object)
		}
		if took := time.Since(start); fuzzing() && len(data) <= 64<<10 && took > slowInput {
			t.Fatalf("%d bytes took %v to decode and validate", len(data), took)
		}
	})
}

// Nested Lists were decoded again whole at every level: 2,000 levels
// (52 KB) took 4 s. They are refused beyond maxListDepth.
func TestDecodeDeepListsRefused(t *testing.T) {
	nested := func(depth int) []byte {
		pod := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}`
		return []byte(strings.Repeat(`{"kind":"List","items":[`, depth) + pod + strings.Repeat("]}", depth))
	}
	if objs, err := Decode(nested(maxListDepth)); err != nil || len(objs) != 1 {
		t.Errorf("%d nested Lists: %d objects, %v; want the one object", maxListDepth, len(objs), err)
	}
	for _, depth := range []int{maxListDepth + 1, 2000} {
		_, err := Decode(nested(depth))
		var st *Status
		if !errors.As(err, &st) || st.Code != 400 || !strings.Contains(st.Message, "nest") {
			t.Errorf("%d nested Lists: %v, want a 400 saying Lists nest too deep", depth, err)
		}
	}
}
