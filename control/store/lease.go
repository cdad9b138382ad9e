package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
)

// Lease keys live in the objects bucket beside the objects they fence. Their
// first token holds a dash, which no kind token (a lowercase kind name) does,
// and they have two tokens, not an object key's three, so lists and watches
// of objects never see them.
const (
	leaseKeyPrefix = "kyb-lease."  // the lease: holder's identity, per-message TTL
	epochKeyPrefix = "kyb-epoch."  // the fencing epoch: written once per acquisition
	checkKeyPrefix = "kyb-fenced." // the first message of every fenced write
)

// ErrLeaseLost is returned (wrapped) when a renewal finds the lease expired
// or held by another process, and by Hold when leadership ends.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a named leader lease in the objects bucket: a key whose value
// is its holder's identity, written with a per-message TTL. It is acquired
// with a KV create (only one process can create an absent key), renewed with
// a compare-and-set write on the revision the holder last wrote, and
// released by deleting that revision. A key not renewed within its duration
// is removed by the server, and then any process may create it. The revision
// of the holder's last write fences its renewals: a renewal on an older
// revision fails. Every other write of the holder is fenced by the lease's
// epoch (see Fence and Store.WithFence). Safe for concurrent use.
type Lease struct {
	s        *Store
	fence    *Fence
	name     string
	key      string
	identity string
	ttl      time.Duration
	renew    time.Duration
	log      *slog.Logger
}

// Lease returns the lease called name for the process identity, lasting
// duration (rounded up to whole seconds, at least one) and renewed every
// renew (which must be shorter than duration).
func (s *Store) Lease(name, identity string, duration, renew time.Duration, log *slog.Logger) (*Lease, error) {
	if err := checkToken("lease name", name, MaxNameLen); err != nil {
		return nil, err
	}
	if name == "" || identity == "" {
		return nil, api.NewBadRequest("lease: name and identity: required")
	}
	if duration < time.Second {
		return nil, api.NewBadRequest("lease %s: duration %v: must be at least 1s", name, duration)
	}
	duration = (duration + time.Second - 1).Truncate(time.Second)
	if renew <= 0 || renew >= duration {
		return nil, api.NewBadRequest("lease %s: renew interval %v: must be positive and under the duration %v", name, renew, duration)
	}
	if log == nil {
		log = slog.Default()
	}
	tok := escapeToken(name)
	return &Lease{s: s, name: name, key: leaseKeyPrefix + tok, identity: identity,
		fence: newFence(name, s.prefix+leaseKeyPrefix+tok, s.prefix+epochKeyPrefix+tok, s.prefix+checkKeyPrefix+tok),
		ttl:   duration, renew: renew, log: log.With("lease", name, "identity", identity)}, nil
}

// Duration is how long the lease lives without a renewal.
func (l *Lease) Duration() time.Duration { return l.ttl }

// Acquire tries once to take the lease: its revision and true when this
// process now holds it, false when another does. A lease still held under
// this identity (the same control plane, restarted before its lease
// expired: the identity is kept in its data directory, which only one
// process can use) is taken back at once with a compare-and-set renewal.
func (l *Lease) Acquire(ctx context.Context) (uint64, bool, error) {
	rev, err := l.s.kv.Create(ctx, l.key, []byte(l.identity), jetstream.KeyTTL(l.ttl))
	if err == nil {
		return rev, true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, false, storeErr("acquire lease "+l.name, err)
	}
	e, err := l.s.kv.Get(ctx, l.key)
	if err != nil || string(e.Value()) != l.identity {
		return 0, false, nil // another holds it (or it just went; try again later)
	}
	rev, err = l.Renew(ctx, e.Revision())
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return 0, false, nil
		}
		return 0, false, err
	}
	return rev, true, nil
}

// Renew extends the lease held at revision rev and returns the new
// revision. It fails with ErrLeaseLost when the key is no longer at rev
// (expired, or taken by another process).
func (l *Lease) Renew(ctx context.Context, rev uint64) (uint64, error) {
	msg := &nats.Msg{Subject: l.s.prefix + l.key, Data: []byte(l.identity)}
	ack, err := l.s.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(l.ttl), jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		if isWrongLastSeq(err) {
			return 0, fmt.Errorf("renew lease %s at revision %d: %w", l.name, rev, ErrLeaseLost)
		}
		return 0, storeErr("renew lease "+l.name, err)
	}
	return ack.Sequence, nil
}

// Fence returns the lease's fence: a Store made with WithFence(l.Fence())
// writes only while this process holds the lease (Hold keeps it current).
func (l *Lease) Fence() *Fence { return l.fence }

// claim starts a holding of the lease acquired (or renewed) at revision
// rev: it writes the lease's epoch key, on the condition that the lease key
// is still at rev, so only the holder can. The epoch's revision is the
// fencing token of every write the holder makes through its Fence; a
// successor's claim moves it, and from then on no write of this holder
// (not even one in flight) can land.
func (l *Lease) claim(ctx context.Context, rev uint64) (uint64, error) {
	msg := &nats.Msg{Subject: l.fence.epochSubj, Data: []byte(l.identity)}
	ack, err := l.s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequenceForSubject(rev, l.fence.leaseSubj))
	if err != nil {
		if isWrongLastSeq(err) {
			return 0, fmt.Errorf("claim lease %s at revision %d: %w", l.name, rev, ErrLeaseLost)
		}
		return 0, storeErr("claim lease "+l.name, err)
	}
	return ack.Sequence, nil
}

// Release gives up the lease held at rev, so another process may take it at
// once. A lease already lost is not an error.
func (l *Lease) Release(ctx context.Context, rev uint64) error {
	err := l.s.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !isWrongLastSeq(err) {
		return storeErr("release lease "+l.name, err)
	}
	return nil
}

// Holder returns the identity holding the lease, or false when none does.
func (l *Lease) Holder(ctx context.Context) (string, bool, error) {
	e, err := l.s.kv.Get(ctx, l.key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return "", false, nil
		}
		return "", false, storeErr("lease holder "+l.name, err)
	}
	if time.Since(e.Created()) > l.ttl || len(e.Value()) == 0 { // expiring, or revoked
		return "", false, nil
	}
	return string(e.Value()), true, nil
}

// retry is how often a standby tries to acquire the lease: a quarter of the
// renew interval, at most every 250 ms (a failed create costs the server
// one compare).
func (l *Lease) retry() time.Duration { return min(l.renew/4, 250*time.Millisecond) }

// Hold campaigns for the lease (trying again every quarter of the renew
// interval, at most every 250 ms) and, once held and claimed (its epoch
// written: the lease's Fence now admits writes), runs fn with a context
// that is cancelled as soon as the lease is lost: a renewal that fails with
// ErrLeaseLost, a fenced write that found another holder's epoch, or no
// successful renewal before the local deadline (the start of the last
// successful renewal plus the duration, less one renew interval so this
// process stops before the server lets another take over). The Fence
// refuses writes from the moment the lease is lost. Hold returns when ctx ends (nil, after
// fn returned and the lease was released), when fn returns (its error; the
// lease is released), or when the lease is lost (ErrLeaseLost, after fn
// returned): a component that lost leadership is rebuilt, never resumed,
// as in Kubernetes.
func (l *Lease) Hold(ctx context.Context, fn func(context.Context) error) error {
	var rev, epoch uint64
	var acquired time.Time
	for {
		acquired = time.Now() // the server's TTL starts after this
		r, ok, err := l.Acquire(ctx)
		if ok {
			epoch, err = l.claim(ctx, r)
			if err == nil {
				rev = r
				break
			}
		}
		if err != nil && ctx.Err() == nil {
			l.log.Warn("lease: acquire failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.retry()):
		}
	}
	l.fence.set(epoch)
	defer l.fence.drop()
	lostFence := l.fence.Lost()
	l.log.Info("lease acquired", "revision", rev, "epoch", epoch)
	deadline := acquired.Add(l.ttl - l.renew)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(fctx) }()
	tick := time.NewTicker(l.renew)
	defer tick.Stop()
	// The deadline is a timer of its own, not checked on a tick, so the
	// holder stops at it, not up to a renew interval later.
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	lost := func(why error) error {
		l.fence.drop()
		l.log.Warn("lease lost; stopping", "err", why)
		cancel()
		<-done
		return fmt.Errorf("lease %s: %w", l.name, ErrLeaseLost)
	}
	for {
		select {
		case <-ctx.Done():
			<-done
			l.fence.drop()
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := l.Release(rctx, rev)
			rcancel()
			if err != nil {
				l.log.Warn("lease: release failed", "err", err)
			}
			return nil
		case err := <-done:
			l.fence.drop()
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = l.Release(rctx, rev)
			rcancel()
			return err
		case <-expire.C:
			return lost(errors.New("no renewal before the local deadline"))
		case <-lostFence:
			return lost(errors.New("a fenced write found another holder's epoch"))
		case <-tick.C:
			start := time.Now()
			rctx, rcancel := context.WithDeadline(ctx, deadline)
			r, err := l.Renew(rctx, rev)
			rcancel()
			switch {
			case err == nil:
				rev = r
				deadline = start.Add(l.ttl - l.renew)
				expire.Reset(time.Until(deadline))
			case errors.Is(err, ErrLeaseLost):
				return lost(err)
			case ctx.Err() != nil:
				// the ctx.Done case above handles it
			case time.Now().After(deadline):
				return lost(err)
			default:
				l.log.Warn("lease: renewal failed; retrying", "err", err)
			}
		}
	}
}

// Revoke takes the lease from whoever holds it (an operator forcing a
// failover). It does not delete the key, which would let another process
// acquire it while the holder still acts until its next renewal: it
// overwrites the key with an empty value living one lease duration, so the
// holder's next renewal fails (it stops within one renew interval) and no
// one can acquire the lease before that value expires.
func (l *Lease) Revoke(ctx context.Context) error {
	msg := &nats.Msg{Subject: l.s.prefix + l.key}
	if _, err := l.s.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(l.ttl)); err != nil {
		return storeErr("revoke lease "+l.name, err)
	}
	return nil
}

// Break removes the lease whoever holds it, so that another process can
// acquire it at once, while the holder still believes it leads until its
// next renewal fails: the overlap that fencing exists for. From the moment
// the new holder has claimed the lease, none of the old holder's fenced
// writes lands, and its first refused write makes it step down. Tests use it
// to force two leaders; an operator's failover is Revoke, which waits.
func (l *Lease) Break(ctx context.Context) error {
	if err := l.s.kv.Purge(ctx, l.key); err != nil {
		return storeErr("break lease "+l.name, err)
	}
	return nil
}

// LeaseHolder returns the identity holding the lease called name, and false
// when none does (never taken, released, revoked or expired): for status
// displays such as `kyb get servers`.
func (s *Store) LeaseHolder(ctx context.Context, name string) (string, bool, error) {
	if err := checkToken("lease name", name, MaxNameLen); err != nil {
		return "", false, err
	}
	m, err := s.stream.GetLastMsgForSubject(ctx, s.prefix+leaseKeyPrefix+escapeToken(name))
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return "", false, nil
		}
		return "", false, storeErr("lease holder "+name, err)
	}
	if isMarker(m.Header) || len(m.Data) == 0 {
		return "", false, nil
	}
	if ttl, err := time.ParseDuration(m.Header.Get(jetstream.MsgTTLHeader)); err == nil && time.Since(m.Time) > ttl {
		return "", false, nil // expired, not yet removed
	}
	return string(m.Data), true, nil
}
