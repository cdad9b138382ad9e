package events_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kybernetes/kybernetes/control/events"
)

// benchStore opens a store on a real embedded server.
func benchStore(b *testing.B) *events.Store {
	b.Helper()
	return open(b, events.Config{})
}

// Repeats: read the stored copy, publish with compare-and-set.

func BenchmarkRecordRepeat(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := st.Record(ctx, ev("web", "BackOff", 1)); err != nil {
			b.Fatal(err)
		}
	}
}

// New events: also count the object's events.
func BenchmarkRecordNew(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := st.Record(ctx, ev(fmt.Sprintf("p%d", i), "Started", 1)); err != nil {
			b.Fatal(err)
		}
	}
}
