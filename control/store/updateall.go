package store

// Added by the scheduler's owner (an additive fast path for bind writes);
// the store's owner may fold it into store.go as they see fit.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

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
	pubs := make([]pendingUpdate, len(objs))
	for i, obj := range objs {
		pubs[i], errs[i] = s.publishUpdate(obj)
	}
	for i, p := range pubs {
		f := p.fut
		if f == nil {
			continue
		}
		kind, meta := api.KindOf(objs[i]), objs[i].GetObjectMeta()
		select {
		case ack := <-f.Ok():
			meta.ResourceVersion = strconv.FormatUint(ack.Sequence, 10)
			if p.specOK {
				s.heads.put(p.key, head{rev: ack.Sequence, uid: meta.UID, created: meta.CreationTimestamp,
					generation: meta.Generation, spec: p.spec, createdRev: p.createdRev})
			}
		case err := <-f.Err():
			if isWrongLastSeq(err) {
				errs[i] = errModified(kind, meta.Name)
			} else {
				errs[i] = storeErr(opName("update", kind, meta.Namespace, meta.Name), err)
			}
		case <-ctx.Done():
			errs[i] = storeErr(opName("update", kind, meta.Namespace, meta.Name), ctx.Err())
		}
	}
	return errs
}

// pendingUpdate is one write of UpdateAll in flight.
type pendingUpdate struct {
	fut        jetstream.PubAckFuture
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
	data, err := json.Marshal(obj)
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
	if p.fut, err = s.js.PublishMsgAsync(updateMsg(s.prefix+key, p.createdRev, data), jetstream.WithExpectLastSequencePerSubject(rev)); err != nil {
		*tm = savedTM
		return pendingUpdate{}, storeErr(op, err)
	}
	return p, nil
}
