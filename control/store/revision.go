package store

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// LeaderContactBound is how recently the leader of a replicated bucket
// must have heard from a quorum of its followers for LastRevision to trust
// its answer. It must stay below the minimum Raft election timeout
// (control/controlplane.ElectionTimeoutMin, 2 s; a test checks): a leader
// cut off from its followers at T stops being trusted at T+bound, before
// the followers can have elected another leader (at T+min election
// timeout at the earliest) and acknowledged a write the cut-off one has
// not seen. It must stay above the leader's heartbeat interval (1 s), or
// a healthy leader would not be trusted between heartbeats. This is a
// Raft leader lease, as etcd's lease-based reads.
const LeaderContactBound = 1500 * time.Millisecond

// revisionPoll is how often LastRevision asks again while the answer is
// not a leader's with a quorum in contact.
const revisionPoll = 50 * time.Millisecond

// LastRevision returns the bucket stream's last sequence: the revision of
// the last write the stream acknowledged (objects, leases and markers
// alike), as its leader knows it. A WatchProgress of the whole bucket that
// has delivered an event at this revision or later has seen every write
// acknowledged before the call, which makes it what etcd's quorum read of
// the current revision is to a Kubernetes watch cache.
//
// It is one stream info request, which only the stream's leader answers
// while it has one. An answer is trusted only when it comes from a leader
// that heard from a quorum of its followers within LeaderContactBound: a
// replica without a leader also answers (with its own, possibly stale,
// state), and so does a leader cut off from its followers until it steps
// down. Untrusted answers are asked again until ctx ends, which is then an
// api Unavailable Status naming why. Safe for concurrent use.
func (s *Store) LastRevision(ctx context.Context) (uint64, error) {
	defer metrics.ObserveStore("revision", time.Now())
	op := "read the last revision of " + s.bucket
	for {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return 0, storeErr(op, err)
		}
		why := leaderInContact(info)
		if why == "" {
			return info.State.LastSeq, nil
		}
		t := time.NewTimer(revisionPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, api.NewUnavailable("%s: jetstream unavailable: %s", op, why)
		case <-t.C:
		}
	}
}

// leaderInContact returns why a stream info answer cannot be trusted to
// hold the stream's last acknowledged write, or "" when it can: it names
// a leader (or the stream has one replica), and a quorum of the replicas,
// the leader included, were in contact with the leader within
// LeaderContactBound.
func leaderInContact(info *jetstream.StreamInfo) string {
	replicas := max(info.Config.Replicas, 1)
	ci := info.Cluster
	if replicas == 1 || ci == nil {
		return ""
	}
	if ci.Leader == "" {
		return "the stream has no leader (the answer is a replica's own state)"
	}
	inContact := 1 // the leader
	for _, p := range ci.Replicas {
		// Contact proves the lease; a follower catching up (not
		// current) still keeps the leader the leader.
		if p != nil && !p.Offline && p.Active < LeaderContactBound {
			inContact++
		}
	}
	if need := replicas/2 + 1; inContact < need {
		return fmt.Sprintf("the stream's leader %s has heard from %d of %d replicas within %s (a quorum is %d)", ci.Leader, inContact, replicas, LeaderContactBound, need)
	}
	return ""
}
