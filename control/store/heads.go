package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"reflect"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// maxHeads bounds the head cache; past it the cache starts over.
const maxHeads = 1 << 18

// head is what Update needs from the stored revision of an object: the
// fields it keeps and a hash of the spec it compares. A revision's content
// never changes, so a head recorded for revision R stays true of R forever;
// an Update whose resourceVersion is R can use it instead of reading R back,
// and its compare-and-set still fails if R is no longer the latest.
type head struct {
	rev        uint64
	uid        string
	created    time.Time
	generation int64
	spec       uint64 // maphash of the spec's JSON
	createdRev uint64 // revision that created the object, 0 when unknown
}

// heads caches the head of the last revision this Store wrote per key, so
// the common read-modify-write through one Store costs one round trip.
// Safe for concurrent use.
type heads struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[string]head
}

func newHeads() *heads { return &heads{seed: maphash.MakeSeed(), m: make(map[string]head)} }

func (h *heads) get(key string, rev uint64) (head, bool) {
	h.mu.Lock()
	e, ok := h.m[key]
	h.mu.Unlock()
	return e, ok && e.rev == rev
}

func (h *heads) put(key string, e head) {
	h.mu.Lock()
	if len(h.m) >= maxHeads {
		clear(h.m)
	}
	h.m[key] = e
	h.mu.Unlock()
}

func (h *heads) forget(key string) {
	h.mu.Lock()
	delete(h.m, key)
	h.mu.Unlock()
}

// specField returns obj's Spec field, or an invalid Value for a kind
// without one.
func specField(obj api.Object) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName("Spec")
}

// specHash hashes the JSON of obj's Spec field (0 for a kind without one).
func (h *heads) specHash(obj api.Object) (uint64, error) {
	f := specField(obj)
	if !f.IsValid() {
		return 0, nil
	}
	b, err := json.Marshal(f.Addr().Interface())
	if err != nil {
		return 0, fmt.Errorf("encode spec: %w", err)
	}
	return maphash.Bytes(h.seed, b), nil
}

// storedSpecHash hashes the spec as stored (raw, from the stored object's
// JSON) the way specHash hashes a live object: an absent spec (omitzero) is
// the zero spec.
func (h *heads) storedSpecHash(obj api.Object, raw json.RawMessage) (uint64, error) {
	f := specField(obj)
	if !f.IsValid() {
		return 0, nil
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		b, err := json.Marshal(reflect.New(f.Type()).Interface())
		if err != nil {
			return 0, fmt.Errorf("encode spec: %w", err)
		}
		raw = b
	}
	return maphash.Bytes(h.seed, raw), nil
}
