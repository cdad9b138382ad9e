package framework

import (
	"container/heap"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// Key names the object a Reconciler works on: namespace ("" for
// cluster-scoped kinds) and name.
type Key struct {
	Namespace string
	Name      string
}

// String returns namespace/name, or name for a cluster-scoped key.
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// KeyOf returns the key of obj.
func KeyOf(obj api.Object) Key {
	m := obj.GetObjectMeta()
	return Key{Namespace: m.Namespace, Name: m.Name}
}

// Queue is a de-duplicating work queue of keys, in the shape of client-go's
// workqueue: a key added any number of times before a worker takes it is
// handed out once; a key is never handed to two workers at once (a key
// added while it is being processed is marked dirty and handed out again
// after Done); AddAfter and AddRateLimited add it later. Safe for
// concurrent use.
type Queue struct {
	limiter RateLimiter
	clock   Clock

	mu         sync.Mutex
	cond       *sync.Cond
	order      []Key             // keys ready to hand out, in order
	dirty      map[Key]struct{}  // keys that need processing (in order or processing)
	processing map[Key]struct{}  // keys handed out and not Done
	waiting    waitHeap          // delayed keys by ready time
	waitIndex  map[Key]*waitItem // delayed key -> its entry
	shutdown   bool
	wake       chan struct{} // nudges the delay loop
	stopped    chan struct{} // closed by ShutDown
}

// NewQueue returns a queue and starts its delay loop, which ends with
// ShutDown. A nil limiter is DefaultRateLimiter, a nil clock RealClock.
func NewQueue(limiter RateLimiter, clock Clock) *Queue {
	if clock == nil {
		clock = RealClock{}
	}
	if limiter == nil {
		limiter = DefaultRateLimiter(clock)
	}
	q := &Queue{
		limiter:    limiter,
		clock:      clock,
		dirty:      make(map[Key]struct{}),
		processing: make(map[Key]struct{}),
		waitIndex:  make(map[Key]*waitItem),
		wake:       make(chan struct{}, 1),
		stopped:    make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	go q.delayLoop()
	return q
}

// Add marks key for processing. It does nothing when key is already
// waiting to be handed out; when key is being processed it is handed out
// again after Done. Nothing is added after ShutDown.
func (q *Queue) Add(key Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key Key) {
	if q.shutdown {
		return
	}
	if _, ok := q.dirty[key]; ok {
		return
	}
	q.dirty[key] = struct{}{}
	if _, ok := q.processing[key]; ok {
		return // handed out again by Done
	}
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter adds key once d has passed (at once when d <= 0). A key already
// waiting keeps the earlier of its two times.
func (q *Queue) AddAfter(key Key, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := q.clock.Now().Add(d)
	if w, ok := q.waitIndex[key]; ok {
		if at.Before(w.at) {
			w.at = at
			heap.Fix(&q.waiting, w.index)
			q.nudge()
		}
		return
	}
	w := &waitItem{key: key, at: at}
	heap.Push(&q.waiting, w)
	q.waitIndex[key] = w
	q.nudge()
}

// AddRateLimited adds key after the wait its rate limiter gives it (which
// grows with each call until Forget).
func (q *Queue) AddRateLimited(key Key) { q.AddAfter(key, q.limiter.When(key)) }

// Forget resets key's rate limiting, after it was processed successfully.
func (q *Queue) Forget(key Key) { q.limiter.Forget(key) }

// NumRequeues returns how many rate-limited retries key had since it was
// last forgotten.
func (q *Queue) NumRequeues(key Key) int { return q.limiter.NumRequeues(key) }

// Get blocks until a key is ready and hands it out; the caller must call
// Done with it. ok is false once the queue is shut down.
func (q *Queue) Get() (key Key, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return Key{}, false
	}
	key = q.order[0]
	q.order[0] = Key{}
	q.order = q.order[1:]
	q.processing[key] = struct{}{}
	delete(q.dirty, key)
	return key, true
}

// Done marks key as processed; if it was added meanwhile it is handed out
// again.
func (q *Queue) Done(key Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if _, ok := q.dirty[key]; ok && !q.shutdown {
		q.order = append(q.order, key)
		q.cond.Signal()
	}
}

// Len returns how many keys are ready to be handed out (not those waiting
// for a delay, nor those being processed).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// Waiting returns how many keys wait for a delay.
func (q *Queue) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// ShutDown stops the queue: Get returns false from now on (keys still
// queued are dropped; the workers stop after their current key) and the
// delay loop ends. Safe to call more than once.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	q.shutdown = true
	q.order = nil
	close(q.stopped)
	q.cond.Broadcast()
}

// ShuttingDown reports whether ShutDown was called.
func (q *Queue) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shutdown
}

func (q *Queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// delayLoop moves delayed keys whose time has come into the queue.
func (q *Queue) delayLoop() {
	for {
		q.mu.Lock()
		now := q.clock.Now()
		for len(q.waiting) > 0 && !q.waiting[0].at.After(now) {
			w := heap.Pop(&q.waiting).(*waitItem)
			delete(q.waitIndex, w.key)
			q.addLocked(w.key)
		}
		var timer <-chan time.Time
		release := func() {}
		if len(q.waiting) > 0 {
			timer, release = q.clock.At(q.waiting[0].at)
		}
		q.mu.Unlock()
		select {
		case <-q.stopped:
			release()
			return
		case <-q.wake:
		case <-timer:
		}
		release()
	}
}

// waitItem is a delayed key.
type waitItem struct {
	key   Key
	at    time.Time
	index int
}

// waitHeap orders delayed keys by ready time.
type waitHeap []*waitItem

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waitItem)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	n := len(old)
	w := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return w
}
