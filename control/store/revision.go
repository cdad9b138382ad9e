package store

import (
	"context"
	"time"

	"github.com/kybernetes/kybernetes/internal/metrics"
)

// LastRevision returns the bucket stream's last sequence: the revision of
// the last write the stream acknowledged (objects, leases and markers
// alike). It is one stream info request, which on a replicated bucket only
// the stream's leader answers, so a server cut off from the leader gets no
// answer (an api Unavailable Status when ctx ends) instead of a stale
// revision. A WatchProgress of the whole bucket that has delivered an
// event at this revision or later has seen every write acknowledged before
// the call. This is what etcd's quorum read of the current revision is to a
// Kubernetes watch cache. Safe for concurrent use.
func (s *Store) LastRevision(ctx context.Context) (uint64, error) {
	defer metrics.ObserveStore("revision", time.Now())
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, storeErr("read the last revision of "+s.bucket, err)
	}
	return info.State.LastSeq, nil
}
