package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream headers of an atomic batch (nats-server 2.12+) and of the
// expected-last-subject-sequence check on another subject (2.11+).
const (
	hdrBatchID        = "Nats-Batch-Id"
	hdrBatchSeq       = "Nats-Batch-Sequence"
	hdrBatchCommit    = "Nats-Batch-Commit"
	hdrExpectSubjSeq  = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectSubjSubj = "Nats-Expected-Last-Subject-Sequence-Subject"
)

// isLeaseKey reports whether a key of the objects bucket belongs to a lease
// (the lease, its epoch, the checks of fenced writes), not to an object.
func isLeaseKey(key string) bool {
	return strings.HasPrefix(key, leaseKeyPrefix) || strings.HasPrefix(key, epochKeyPrefix) ||
		strings.HasPrefix(key, checkKeyPrefix)
}

// JetStream error codes a fenced write retries on.
const (
	errCodeBatchTooManyInflight = 10210 // JSAtomicPublishTooManyInflight
	errCodeBatchIncomplete      = 10176 // JSAtomicPublishIncompleteBatchErr
)

// maxFencedGroup is the most objects UpdateAll writes in one fenced batch
// (JetStream's limit is 1,000 messages a batch).
const maxFencedGroup = 500

// Fence is the fencing token of a Lease: the revision of the lease's epoch
// key, which the holder writes once per acquisition (checked against the
// lease key's revision, so only the holder can write it) before it acts.
// A Store made with WithFence writes every object change as a JetStream
// atomic batch of two messages: the first carries the check "the epoch key
// is still at my epoch", the second is the object write with its own
// compare-and-set. A successor's acquisition moves the epoch, so every
// batch of a deposed holder fails as a whole, even one already in flight
// when the lease changed hands: the stream applies the batch's checks and
// its writes at one point of its order. Renewals do not move the epoch, so
// they never fail a write in flight. Safe for concurrent use.
type Fence struct {
	lease     string
	leaseSubj string // the lease key
	epochSubj string // the epoch key, checked by every fenced write
	checkSubj string // the first message of every fenced write

	mu    sync.Mutex
	epoch uint64        // 0 while not held
	lost  chan struct{} // closed when a write finds the epoch moved on
}

func newFence(lease, leaseSubj, epochSubj, checkSubj string) *Fence {
	return &Fence{lease: lease, leaseSubj: leaseSubj, epochSubj: epochSubj, checkSubj: checkSubj,
		lost: make(chan struct{})}
}

// Lease is the name of the lease whose holder the fence admits.
func (f *Fence) Lease() string { return f.lease }

// Epoch returns the epoch fenced writes are checked against, and false
// while the lease is not held by this process.
func (f *Fence) Epoch() (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch, f.epoch != 0
}

// Lost is closed when a fenced write found that another process took the
// lease (its epoch moved on); the holder then stops at once.
func (f *Fence) Lost() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lost
}

// set starts a holding at epoch.
func (f *Fence) set(epoch uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch = epoch
	f.lost = make(chan struct{})
}

// drop ends the holding: later fenced writes fail before they are sent.
func (f *Fence) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch = 0
}

// deposed records that the stored epoch is no longer epoch.
func (f *Fence) deposed(epoch uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.epoch == epoch && epoch != 0 {
		f.epoch = 0
		close(f.lost)
	}
}

// errNotHeld is the error of a fenced write by a process that does not hold
// (or no longer holds) the lease.
func (f *Fence) errNotHeld(op string) error {
	return fmt.Errorf("%s: fenced by lease %s, which this process does not hold: %w", op, f.lease, ErrLeaseLost)
}

// FenceMode says how a Store made by WithFence fences its writes.
type FenceMode int

const (
	// FenceAuto fences with atomic batches when the JetStream server is
	// part of a cluster (where another control plane may hold the lease)
	// and checks the lease locally otherwise: a JetStream that is not
	// clustered is embedded in its only control plane (the control plane's
	// JetStream identity exists only in that process), so no other process
	// can hold the lease and write, and a process that dies takes its
	// server, and its writes in flight, with it.
	FenceAuto FenceMode = iota
	// FenceBatch always fences with atomic batches (tests run several
	// control planes on one server).
	FenceBatch
	// FenceLocal only checks, before each write, that this process holds
	// the lease.
	FenceLocal
)

// WithFence returns a Store that shares s's bucket and caches and makes
// every write (Create, Update, UpdateAll, Delete) fenced by f: it fails,
// wrapping ErrLeaseLost, when this process does not hold f's lease, or
// (with atomic batches, see FenceMode) no longer does when the write
// reaches the server. Reads are not fenced. The scheduler and the
// controllers write through such a Store.
//
// Concurrent writes through the returned Store are committed together: while
// a batch is in flight the next writes gather, and go as one atomic batch
// behind one epoch check, so many writers pay for few batches. A group that
// fails on a write's compare-and-set is sent again in halves, down to the
// writes that fail, so every write gets its own outcome.
func (s *Store) WithFence(f *Fence) *Store {
	c := *s
	c.fence = f
	c.commits = &committer{s: &c}
	switch s.fenceMode {
	case FenceBatch:
		c.batchFence = true
	case FenceLocal:
		c.batchFence = false
	default:
		c.batchFence = s.js.Conn().ConnectedClusterName() != ""
	}
	return &c
}

// BatchFenced reports whether the Store's writes are fenced by atomic
// batches checked by the server (false: not fenced, or checked locally).
func (s *Store) BatchFenced() bool { return s.fence != nil && s.batchFence }

// Fence returns the fence of the Store (nil when its writes are not fenced).
func (s *Store) Fence() *Fence { return s.fence }

// pubResponse is JetStream's reply to a publish.
type pubResponse struct {
	Error    *jetstream.APIError `json:"error,omitempty"`
	Sequence uint64              `json:"seq"`
}

// publish writes msg with compare-and-set (the subject's last revision must
// be expect; 0: none) and returns its revision: one publish, or, through a
// fenced Store, an atomic batch fenced by the lease's epoch. Errors are as
// JetStream's (isWrongLastSeq tells a failed compare-and-set), except a
// fenced write whose lease moved on, which wraps ErrLeaseLost.
func (s *Store) publish(ctx context.Context, op string, msg *nats.Msg, expect uint64) (uint64, error) {
	if s.BatchFenced() {
		return s.commits.write(ctx, op, msg, expect)
	}
	if s.fence != nil {
		if _, ok := s.fence.Epoch(); !ok {
			return 0, s.fence.errNotHeld(op)
		}
	}
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(expect))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// maxFencedBatches is how many group batches one fenced Store keeps in
// flight: one, while the next gathers. (On a replicated stream, two batches
// checking one epoch key at once would refuse each other: JetStream checks
// a key's last revision only when no other write checking it is being
// replicated.)
const maxFencedBatches = 1

// committer groups the concurrent fenced writes of one Store into atomic
// batches (group commit).
type committer struct {
	s        *Store
	mu       sync.Mutex
	queue    []*fencedWrite
	inflight int
}

type fencedWrite struct {
	ctx    context.Context // the caller's: a write it gave up on is not sent
	op     string
	msg    *nats.Msg
	expect uint64
	seq    uint64
	err    error
	done   chan struct{}
}

// write queues one write and waits for its outcome (or ctx: then the write
// may still land, as any publish whose reply is lost).
func (c *committer) write(ctx context.Context, op string, msg *nats.Msg, expect uint64) (uint64, error) {
	if _, ok := c.s.fence.Epoch(); !ok {
		return 0, c.s.fence.errNotHeld(op)
	}
	w := &fencedWrite{ctx: ctx, op: op, msg: msg, expect: expect, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	if c.inflight < maxFencedBatches {
		c.inflight++
		go c.run()
	}
	c.mu.Unlock()
	select {
	case <-w.done:
		return w.seq, w.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run commits queued groups until the queue is empty.
func (c *committer) run() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.inflight--
			c.mu.Unlock()
			return
		}
		var group []*fencedWrite
		n := 0
		for _, w := range c.queue {
			if n == maxFencedGroup {
				break
			}
			n++
			if err := w.ctx.Err(); err != nil {
				w.err = err
				close(w.done)
				continue
			}
			group = append(group, w)
		}
		c.queue = c.queue[n:]
		c.mu.Unlock()
		if len(group) > 0 {
			c.commit(group)
		}
	}
}

// commit writes a group as one batch. When a compare-and-set fails in it
// (the batch does not say which), it writes each half again, down to the
// single writes that fail: k failures among n writes cost about k·log2(n)
// batches, and every write gets its own outcome.
func (c *committer) commit(group []*fencedWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.commitGroup(ctx, group)
}

func (c *committer) commitGroup(ctx context.Context, group []*fencedWrite) {
	finish := func(w *fencedWrite, seq uint64, err error) {
		w.seq, w.err = seq, err
		close(w.done)
	}
	op := group[0].op
	if len(group) > 1 {
		op = "write a group of objects"
	}
	msgs := make([]*nats.Msg, len(group))
	expect := make([]uint64, len(group))
	for i, w := range group {
		msgs[i], expect[i] = w.msg, w.expect
	}
	seqs, err := c.s.publishFencedGroup(ctx, op, msgs, expect)
	switch {
	case err == nil:
		for i, w := range group {
			finish(w, seqs[i], nil)
		}
	case len(group) > 1 && !errors.Is(err, ErrLeaseLost) && (isWrongLastSeq(err) || isBatchErr(err)):
		half := len(group) / 2
		c.commitGroup(ctx, group[:half])
		c.commitGroup(ctx, group[half:])
	default:
		for _, w := range group {
			if len(group) > 1 && errors.Is(err, ErrLeaseLost) {
				finish(w, 0, fmt.Errorf("%s: %w", w.op, err))
			} else {
				finish(w, 0, err)
			}
		}
	}
}

// isBatchErr reports whether err is JetStream refusing a batch as a whole
// (too large, a key written twice in it), which its writes sent one by one
// may not be.
func isBatchErr(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 400
}

// publishFenced writes msg as the second message of an atomic batch whose
// first checks the fence's epoch.
func (s *Store) publishFenced(ctx context.Context, op string, msg *nats.Msg, expect uint64) (uint64, error) {
	seqs, err := s.publishFencedGroup(ctx, op, []*nats.Msg{msg}, []uint64{expect})
	if err != nil {
		return 0, err
	}
	return seqs[0], nil
}

// publishFencedGroup writes msgs (each with compare-and-set on expect[i])
// as one atomic batch behind a check of the fence's epoch, and returns
// their revisions. Every message lands, or none.
func (s *Store) publishFencedGroup(ctx context.Context, op string, msgs []*nats.Msg, expect []uint64) ([]uint64, error) {
	f := s.fence
	nc := s.js.Conn()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second) // JetStream's default publish timeout
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		epoch, ok := f.Epoch()
		if !ok {
			return nil, f.errNotHeld(op)
		}
		id := newUID()
		check := &nats.Msg{Subject: f.checkSubj, Header: nats.Header{
			hdrBatchID:        []string{id},
			hdrBatchSeq:       []string{"1"},
			hdrExpectSubjSeq:  []string{strconv.FormatUint(epoch, 10)},
			hdrExpectSubjSubj: []string{f.epochSubj},
		}}
		// One round trip: every message but the commit is published
		// without a reply (a connection keeps its messages in order).
		if err := nc.PublishMsg(check); err != nil {
			return nil, err
		}
		var reply *nats.Msg
		for j, msg := range msgs {
			write := &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: make(nats.Header, len(msg.Header)+4)}
			for k, v := range msg.Header {
				write.Header[k] = v
			}
			write.Header[hdrBatchID] = []string{id}
			write.Header[hdrBatchSeq] = []string{strconv.Itoa(j + 2)}
			write.Header[hdrExpectSubjSeq] = []string{strconv.FormatUint(expect[j], 10)}
			if j < len(msgs)-1 {
				if err := nc.PublishMsg(write); err != nil {
					return nil, err
				}
				continue
			}
			write.Header[hdrBatchCommit] = []string{"1"}
			var err error
			if reply, err = nc.RequestMsgWithContext(ctx, write); err != nil {
				if errors.Is(err, nats.ErrNoResponders) {
					return nil, jetstream.ErrNoStreamResponse
				}
				return nil, err
			}
		}
		var resp pubResponse
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			return nil, fmt.Errorf("decode publish reply: %w", err)
		}
		if resp.Error == nil {
			// A batch is stored in order, at consecutive revisions.
			seqs := make([]uint64, len(msgs))
			for j := range msgs {
				seqs[j] = resp.Sequence - uint64(len(msgs)-1-j)
			}
			return seqs, nil
		}
		apiErr := resp.Error
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			// The epoch check or a compare-and-set failed (or, on a
			// replicated stream, could not be made while another write of
			// the same key was being replicated): find which.
			last, err := s.stream.GetLastMsgForSubject(ctx, f.epochSubj)
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, err
			}
			if last == nil || last.Sequence != epoch {
				f.deposed(epoch)
				return nil, fmt.Errorf("%s: fenced by lease %s: another process took it (epoch %d is gone): %w",
					op, f.lease, epoch, ErrLeaseLost)
			}
			if apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || attempt >= 8 {
				return nil, apiErr
			}
		case errCodeBatchTooManyInflight, errCodeBatchIncomplete:
			if attempt >= 8 {
				return nil, apiErr
			}
		default:
			return nil, apiErr
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(1<<attempt) * time.Millisecond):
		}
	}
}
