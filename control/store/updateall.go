package store

// Added by the scheduler's owner (an additive fast path for bind writes);
// the store's owner may fold it into store.go as they see fit.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// UpdateAll writes each object with compare-and-set on its resourceVersion,
// like Update, for callers that hold each stored object as last read (from
// Get, List or Watch) and changed it: it does not read the stored objects
// first, and writes metadata as given, so the caller keeps uid and
// creationTimestamp from what it read and raises generation itself when it
// changes spec. The writes are published asynchronously and are in flight
// together, so n objects cost about one round trip instead of 2n.
//
// errs[i] is the outcome for objs[i]: nil, and objs[i] updated in place
// with its new resourceVersion; a Conflict Status when the key's last
// revision is not objs[i]'s resourceVersion (it changed or was deleted); a
// BadRequest Status for a missing name, namespace or resourceVersion; or an
// Unavailable Status when JetStream cannot be reached. On failure objs[i] is
// left as it was. Safe for concurrent use.
//
// When this Store wrote the revision being replaced, the write keeps the
// object's creation revision header (so watches tell Added from Modified)
// and the Store's head cache stays current, so a later Update of the new
// revision needs no read.
func (s *Store) UpdateAll(ctx context.Context, objs []api.Object) []error {
	defer metrics.ObserveStore("update_all", time.Now())
	errs := make([]error, len(objs))
	if s.fence != nil && !s.batchFence {
		if _, ok := s.fence.Epoch(); !ok {
			for i := range errs {
				errs[i] = s.fence.errNotHeld("update")
			}
			return errs
		}
	}
	pubs := make([]pendingUpdate, len(objs))
	for i, obj := range objs {
		pubs[i], errs[i] = s.publishUpdate(obj)
	}
	if s.BatchFenced() {
		s.updateAllFenced(ctx, objs, pubs, errs)
		return errs
	}
	for i, p := range pubs {
		f := p.fut
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			s.updated(objs[i], &p, ack.Sequence)
		case err := <-f.Err():
			errs[i] = s.updateErr(objs[i], err)
		case <-ctx.Done():
			errs[i] = s.updateErr(objs[i], ctx.Err())
		}
	}
	return errs
}

// updateAllFenced sends the fenced writes of UpdateAll through the Store's
// group commit: they go together in atomic batches behind one epoch check
// each, and a stale object fails alone.
func (s *Store) updateAllFenced(ctx context.Context, objs []api.Object, pubs []pendingUpdate, errs []error) {
	var wg sync.WaitGroup
	for i := range pubs {
		p := &pubs[i]
		if p.msg == nil {
			continue
		}
		wg.Go(func() {
			meta := objs[i].GetObjectMeta()
			seq, err := s.commits.write(ctx, opName("update", api.KindOf(objs[i]), meta.Namespace, meta.Name), p.msg, p.rev)
			if err != nil {
				errs[i] = s.updateErr(objs[i], err)
				return
			}
			s.updated(objs[i], p, seq)
		})
	}
	wg.Wait()
}

// updated records the new revision seq of obj written by UpdateAll.
func (s *Store) updated(obj api.Object, p *pendingUpdate, seq uint64) {
	meta := obj.GetObjectMeta()
	meta.ResourceVersion = strconv.FormatUint(seq, 10)
	if p.specOK {
		s.heads.put(p.key, head{rev: seq, uid: meta.UID, created: meta.CreationTimestamp,
			generation: meta.Generation, spec: p.spec, createdRev: p.createdRev})
	}
}

// updateErr is the error of UpdateAll for obj whose write failed with err.
func (s *Store) updateErr(obj api.Object, err error) error {
	kind, meta := api.KindOf(obj), obj.GetObjectMeta()
	switch {
	case errors.Is(err, ErrLeaseLost):
		return err
	case isWrongLastSeq(err):
		return errModified(kind, meta.Name)
	default:
		return storeErr(opName("update", kind, meta.Namespace, meta.Name), err)
	}
}

// pendingUpdate is one write of UpdateAll in flight.
type pendingUpdate struct {
	fut        jetstream.PubAckFuture
	msg        *nats.Msg // the write, when fenced (sent by updateAllFenced)
	rev        uint64    // the revision it replaces
	key        string
	spec       uint64
	specOK     bool
	createdRev uint64
}

func (s *Store) publishUpdate(obj api.Object) (pendingUpdate, error) {
	kind, meta, key, err := target(obj)
	if err != nil {
		return pendingUpdate{}, err
	}
	rev, err := parseRV(kind, meta.Name, meta.ResourceVersion)
	if err != nil {
		return pendingUpdate{}, err
	}
	p := pendingUpdate{key: key}
	if h, ok := s.heads.get(key, rev); ok {
		p.createdRev = h.createdRev
	}
	if p.spec, err = s.heads.specHash(obj); err == nil {
		p.specOK = true
	}
	op := opName("update", kind, meta.Namespace, meta.Name)
	tm := obj.GetTypeMeta()
	savedTM, savedRV := *tm, meta.ResourceVersion
	kind.FillTypeMeta(tm)
	meta.ResourceVersion = ""
	data, err := s.marshal(obj)
	meta.ResourceVersion = savedRV
	if err != nil {
		*tm = savedTM
		return pendingUpdate{}, fmt.Errorf("%s: encode: %w", op, err)
	}
	if len(data) > MaxObjectSize {
		*tm = savedTM
		return pendingUpdate{}, &api.Status{Code: 413, Reason: api.ReasonTooLarge,
			Message: fmt.Sprintf("%s: object larger than %d bytes", op, MaxObjectSize)}
	}
	if s.BatchFenced() {
		p.msg, p.rev = updateMsg(s.prefix+key, p.createdRev, data), rev
		return p, nil
	}
	if p.fut, err = s.js.PublishMsgAsync(updateMsg(s.prefix+key, p.createdRev, data), jetstream.WithExpectLastSequencePerSubject(rev)); err != nil {
		*tm = savedTM
		return pendingUpdate{}, storeErr(op, err)
	}
	return p, nil
}
