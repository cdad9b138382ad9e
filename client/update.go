package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// ErrUnchanged is what an Update mutation returns when it has nothing to
// change: Update then writes nothing and reports false.
var ErrUnchanged = errors.New("unchanged")

// Update reads one object, lets mutate change it, and writes it back with
// a compare-and-set apply on the resourceVersion it read, reading again
// when someone wrote in between (409 Conflict, retried as
// retry.DefaultRetry says). It reports whether it wrote. Every call goes
// through the API with the client's identity, so RBAC decides (get and
// update on the kind).
func (c *Client) Update(ctx context.Context, kind, namespace, name string, mutate func(api.Object) error) (bool, error) {
	wrote := false
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.Get(ctx, kind, namespace, name)
		if err != nil {
			return err
		}
		if err := mutate(obj); errors.Is(err, ErrUnchanged) {
			return nil
		} else if err != nil {
			return err
		}
		b, err := json.Marshal(obj) // carries the resourceVersion read
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", kind, name, err)
		}
		if _, err := c.Apply(ctx, b); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	return wrote, err
}
