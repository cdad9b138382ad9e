package framework

import (
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/internal/retry"
)

// RateLimiter decides how long a key waits before it is retried. Safe for
// concurrent use.
type RateLimiter interface {
	// When returns the wait before key's next retry and counts the retry.
	When(key Key) time.Duration
	// Forget resets key's count (after a success).
	Forget(key Key)
	// NumRequeues returns how many retries key had since it was last
	// forgotten.
	NumRequeues(key Key) int
}

// Default rate limits of a controller's queue: per key, 5 ms doubling to
// 5 minutes; overall, 50 retries a second with bursts of 300.
const (
	DefaultKeyBaseDelay = 5 * time.Millisecond
	DefaultKeyMaxDelay  = 5 * time.Minute
	DefaultQPS          = 50
	DefaultBurst        = 300
)

// DefaultRateLimiter is the rate limiter of a Controller whose Options name
// none: the larger of a per-key exponential back-off and an overall token
// bucket, as client-go's DefaultControllerRateLimiter.
func DefaultRateLimiter(clock Clock) RateLimiter {
	return MaxOf(
		NewKeyBackoff(retry.Backoff{Initial: DefaultKeyBaseDelay, Max: DefaultKeyMaxDelay, Factor: 2}),
		NewBucket(DefaultQPS, DefaultBurst, clock),
	)
}

// KeyBackoff waits b.Delay(n) before the n-th retry of a key (no jitter:
// the overall bucket spreads retries). Safe for concurrent use.
type KeyBackoff struct {
	b        retry.Backoff
	mu       sync.Mutex
	failures map[Key]int
}

// NewKeyBackoff returns a per-key exponential back-off.
func NewKeyBackoff(b retry.Backoff) *KeyBackoff {
	return &KeyBackoff{b: b, failures: make(map[Key]int)}
}

// When returns the key's next wait and counts it.
func (k *KeyBackoff) When(key Key) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.failures[key]
	k.failures[key] = n + 1
	return k.b.Delay(n)
}

// Forget resets the key's back-off.
func (k *KeyBackoff) Forget(key Key) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.failures, key)
}

// NumRequeues returns the key's retries since it was last forgotten.
func (k *KeyBackoff) NumRequeues(key Key) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures[key]
}

// Bucket is an overall token bucket: qps retries a second, bursts up to
// burst; a retry that finds no token waits for its turn. Safe for
// concurrent use.
type Bucket struct {
	qps    float64
	burst  float64
	clock  Clock
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewBucket returns a full token bucket.
func NewBucket(qps float64, burst int, clock Clock) *Bucket {
	if clock == nil {
		clock = RealClock{}
	}
	return &Bucket{qps: qps, burst: float64(burst), clock: clock, tokens: float64(burst), last: clock.Now()}
}

// When takes a token and returns how long until it is available.
func (b *Bucket) When(Key) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.qps)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.qps * float64(time.Second))
}

// Forget does nothing: the bucket is not per key.
func (b *Bucket) Forget(Key) {}

// NumRequeues is 0: the bucket is not per key.
func (b *Bucket) NumRequeues(Key) int { return 0 }

// maxOf waits the longest of its limiters.
type maxOf []RateLimiter

// MaxOf returns a RateLimiter that waits the longest of limiters.
func MaxOf(limiters ...RateLimiter) RateLimiter { return maxOf(limiters) }

func (m maxOf) When(key Key) time.Duration {
	var d time.Duration
	for _, l := range m {
		d = max(d, l.When(key))
	}
	return d
}

func (m maxOf) Forget(key Key) {
	for _, l := range m {
		l.Forget(key)
	}
}

func (m maxOf) NumRequeues(key Key) int {
	n := 0
	for _, l := range m {
		n = max(n, l.NumRequeues(key))
	}
	return n
}
