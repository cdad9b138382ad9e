package apiserver

import (
	"context"
	"errors"

	"github.com/kybernetes/kybernetes/internal/retry"
)

// casBackoff spaces the attempts of a compare-and-set loop: at most
// maxApplyAttempts, waits from 1 ms growing to 50 ms, jittered.
var casBackoff = func() retry.Backoff {
	b := retry.DefaultRetry
	b.Steps = maxApplyAttempts
	return b
}()

// raced wraps the error of a write that lost a race (the object changed,
// appeared or vanished between read and write): casLoop tries again.
type raced struct{ err error }

func (r *raced) Error() string { return r.err.Error() }
func (r *raced) Unwrap() error { return r.err }

// again marks err as a lost race for casLoop.
func again(err error) error { return &raced{err: err} }

func isRaced(err error) bool {
	var r *raced
	return errors.As(err, &r)
}

// casLoop runs fn, a read-modify-write, until it returns something other
// than again(...), with retry.OnError and casBackoff. When every attempt
// lost its race it returns gaveUp(), or the last write's error when gaveUp
// is nil; when ctx ends while waiting, ctx's error.
func casLoop(ctx context.Context, gaveUp func() error, fn func() error) error {
	err := retry.OnError(ctx, casBackoff, isRaced, fn)
	if !isRaced(err) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if gaveUp != nil {
		return gaveUp()
	}
	var r *raced
	errors.As(err, &r)
	return r.err
}
