package node

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// maxBatchBytes bounds the body of one podstatus request, well below NATS'
// default 1 MiB max payload.
const maxBatchBytes = 512 << 10

// reporter coalesces pod status updates into batches on
// kyb.node.<name>.podstatus. It keeps only the latest update per pod; what
// could not be sent stays queued until it can (newer updates win).
type reporter struct {
	a     *Agent
	mu    sync.Mutex
	queue map[string]queued // by pod UID
	seq   uint64
	kick  chan struct{}
	now   chan struct{}
}

type queued struct {
	seq  uint64
	data []byte // JSON of the api.PodStatusUpdate
}

func newReporter(a *Agent) *reporter {
	return &reporter{a: a, queue: map[string]queued{}, kick: make(chan struct{}, 1), now: make(chan struct{}, 1)}
}

// put queues u, replacing an older update of the same pod.
func (r *reporter) put(u *api.PodStatusUpdate) {
	data, err := json.Marshal(u)
	if err != nil {
		r.a.log.Error("encode pod status", "pod", u.Namespace+"/"+u.Name, "err", err)
		return
	}
	r.mu.Lock()
	r.seq++
	r.queue[u.UID] = queued{seq: r.seq, data: data}
	full := len(r.queue) >= r.a.cfg.StatusBatchMax
	r.mu.Unlock()
	signal(r.kick)
	if full {
		signal(r.now)
	}
}

// drop forgets the queued update of a pod that is gone.
func (r *reporter) drop(uid string) {
	r.mu.Lock()
	delete(r.queue, uid)
	r.mu.Unlock()
}

// flushNow sends what is queued without waiting (after a reconnect).
func (r *reporter) flushNow() { signal(r.kick); signal(r.now) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (r *reporter) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

func (r *reporter) run(ctx context.Context) {
	retry := 100 * time.Millisecond
	var lastSent time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		// Group commit: send at once; what changes while a batch is in
		// flight goes in the next. StatusFlushInterval, when set, spaces
		// batches out.
		if wait := time.Until(lastSent.Add(r.a.cfg.StatusFlushInterval)); wait > 0 && !r.pause(ctx, wait) {
			return
		}
		lastSent = time.Now()
		for r.pending() > 0 {
			if err := r.sendBatch(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.a.log.Debug("send pod status; keeping it queued", "err", err, "retry", retry)
				if !r.pause(ctx, retry) {
					return
				}
				retry = min(retry*2, 5*time.Second)
				continue
			}
			retry = 100 * time.Millisecond
		}
	}
}

// pause waits d, or less when flushNow (a reconnect) or a full queue asks
// to send now. It returns false when ctx ends.
func (r *reporter) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-r.now:
	}
	return true
}

// sendBatch sends up to StatusBatchMax queued updates in one request. On
// failure the updates go back into the queue unless newer ones came.
func (r *reporter) sendBatch(ctx context.Context) error {
	r.mu.Lock()
	var buf bytes.Buffer
	buf.WriteString(`{"items":[`)
	taken := map[string]queued{}
	for uid, q := range r.queue {
		if len(taken) >= r.a.cfg.StatusBatchMax || (len(taken) > 0 && buf.Len()+len(q.data) > maxBatchBytes) {
			break
		}
		if len(taken) > 0 {
			buf.WriteByte(',')
		}
		buf.Write(q.data)
		taken[uid] = q
		delete(r.queue, uid)
	}
	r.mu.Unlock()
	buf.WriteString(`]}`)
	if len(taken) == 0 {
		return nil
	}
	err := r.a.request(ctx, api.NodeVerbPodStatus, json.RawMessage(buf.Bytes()), nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		for uid, q := range taken {
			if cur, ok := r.queue[uid]; !ok || cur.seq < q.seq {
				r.queue[uid] = q
			}
		}
		return err
	}
	return nil
}
