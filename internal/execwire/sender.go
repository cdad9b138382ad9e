package execwire

import (
	"context"

	"github.com/kybernetes/kybernetes/api"
)

// Sender is an io.Writer that sends what is written as data frames of at
// most api.ExecChunk bytes, each within the credit of its Window: a writer
// faster than the receiver blocks here, not in NATS or memory.
type Sender struct {
	Ctx    context.Context
	Window *Window
	// Send publishes one data frame.
	Send func(data []byte) error
}

// Write implements io.Writer.
func (s *Sender) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		k := min(len(p)-done, api.ExecChunk)
		if err := s.Window.TakeAll(s.Ctx, Cost(k)); err != nil {
			return done, err
		}
		if err := s.Send(p[done : done+k]); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}
