package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Compact removes delete markers (and the last values they carry) that are
// older than olderThan, and returns how many it removed. Without it every
// deleted object leaves a marker forever, and lists and watches from 0 read
// past all of them.
//
// A watch resuming from a revision older than a removed marker misses that
// deletion (as a Kubernetes watch misses what etcd compacted), so a
// component disconnected for longer than olderThan must list or watch from
// 0 again; choose olderThan much longer than any expected disconnection
// (an hour or more). Compact is safe alongside writes: it removes a marker
// only up to its own revision, so an object created again meanwhile is
// never touched. Safe for concurrent use.
func (s *Store) Compact(ctx context.Context, olderThan time.Duration) (int, error) {
	cons, err := s.js.OrderedConsumer(ctx, s.streamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{s.prefix + ">"},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:       true,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return 0, storeErr("compact", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, storeErr("compact", err)
	}
	defer s.deleteConsumer(cons)
	defer it.Stop()

	type marker struct {
		subject string
		seq     uint64
	}
	var old []marker
	limit := time.Now().Add(-olderThan)
	if ci := cons.CachedInfo(); ci == nil || ci.NumPending > 0 {
		for {
			if ctx.Err() != nil {
				return 0, storeErr("compact", ctx.Err())
			}
			msg, err := it.Next(jetstream.NextMaxWait(5 * time.Second))
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				return 0, storeErr("compact: read markers", err)
			}
			md, err := msg.Metadata()
			if err != nil {
				return 0, fmt.Errorf("compact: %w", err)
			}
			if isMarker(msg.Headers()) && md.Timestamp.Before(limit) {
				old = append(old, marker{msg.Subject(), md.Sequence.Stream})
			}
			if md.NumPending == 0 {
				break
			}
		}
	}
	for i, m := range old {
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(m.subject), jetstream.WithPurgeSequence(m.seq+1)); err != nil {
			return i, storeErr("compact: purge "+m.subject, err)
		}
	}
	return len(old), nil
}
