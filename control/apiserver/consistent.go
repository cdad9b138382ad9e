package apiserver

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// consistentReadTimeout bounds how long a consistent get or list waits for
// the store's last revision and for this server's cache to apply it, as
// Kubernetes' watch cache waits 3 s before a 504.
const consistentReadTimeout = 3 * time.Second

// readAt is the revision a get or list must be served at: 0 for any cached
// state (resourceVersion "0"), latest for the store's last revision
// (resourceVersion ""), else a revision the cache must have reached.
type readAt struct {
	latest bool
	rev    uint64
}

// parseReadRV checks a get or list request's resourceVersion, with a 400
// naming the field.
func parseReadRV(rv string) (readAt, error) {
	switch rv {
	case "":
		return readAt{latest: true}, nil
	case api.ResourceVersionAny:
		return readAt{}, nil
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil || len(rv) > 20 {
		return readAt{}, badField("resourceVersion", []string{`must be "", "0" or a revision (a decimal number)`})
	}
	return readAt{rev: n}, nil
}

// awaitRead waits until the cache can serve a read at r: for a latest read,
// until the cache has applied the store's last revision, read from the
// stream's leader when the request arrived, so that every write
// acknowledged before it (through any server) is in the reply, as
// Kubernetes' consistent reads from cache (KEP-2340) wait on etcd's
// current revision. It gives up after consistentReadTimeout with a 504
// Timeout Status the client retries: a server cut off from the stream's
// leader, or whose watch lags, answers so, never with stale data.
func (s *Server) awaitRead(ctx context.Context, r readAt) error {
	if !r.latest && r.rev == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, consistentReadTimeout)
	defer cancel()
	rev := r.rev
	if r.latest {
		var err error
		if rev, err = s.revs.get(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				return api.NewUnavailable("consistent read: %v", err)
			}
			// No leader, a leader out of contact with its followers, a
			// JetStream error: this server cannot prove its cache current.
			return api.NewTimeout("consistent read: the store's last revision is unknown within %s (no leader of the objects stream in contact with a quorum answers this server): %v; retry, or read with resourceVersion \"0\" for this server's cached state", consistentReadTimeout, err)
		}
	}
	if err := s.cache.waitRev(ctx, rev); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return api.NewTimeout("consistent read: this server's cache is at revision %d, not %d, after %s; retry", s.cache.revision(), rev, consistentReadTimeout)
		}
		return api.NewUnavailable("consistent read: %v", err)
	}
	return nil
}
