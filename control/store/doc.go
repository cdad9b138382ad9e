// Package store is the typed store of API objects over JetStream KV: get,
// list, create, update (compare-and-set), delete and watch. It is the only
// package that touches KV buckets and knows their key layout.
//
// # Layout
//
// One bucket ("kyb-objects" by default, History 1, file storage, values up
// to 1 MiB) holds every object as JSON under the key
//
//	<kind lower-case>.<namespace, or _ for cluster-scoped kinds>.<name>
//
// Namespace and name are escaped into valid key tokens: every byte outside
// [-a-zA-Z0-9] becomes '=' and two hex digits, so a DNS subdomain such as
// "node.example.com" is stored as "node=2Eexample=2Ecom" and read back
// unchanged. A name longer than MaxNameLen (253) or a namespace longer than
// MaxNamespaceLen (63) is refused with a 400 naming the field before it
// becomes part of a subject: NATS closes a connection whose control line
// exceeds 4 KB, and the store's connection is the control plane's.
//
// # Revisions
//
// An object's resourceVersion is the KV revision (the stream sequence) of its
// stored value, as a decimal string; the stored field is ignored and set on
// every read. Create publishes with "expected last subject sequence 0" (or
// that of a delete marker), Update with the revision from resourceVersion, so
// every write is a compare-and-set. Update requires a resourceVersion (an
// empty or malformed one is a BadRequest, a stale one a Conflict). Delete
// writes a KV delete marker that carries the last value, so that watchers
// starting at any revision can report it.
//
// Delete markers stay until Compact removes those older than a given age; a
// watch resuming from before a removed marker misses that deletion, so
// components disconnected for longer must list again (compare etcd
// compaction).
//
// A Store remembers, per object, the head (uid, creationTimestamp,
// generation, spec hash) of the last revision it wrote, so an Update of that
// revision needs no read; a revision's content never changes, and the write
// is still a compare-and-set, so the cache cannot hide a conflict.
//
// Each message carries small headers besides the KV ones: "Kyb-Op: create"
// on a create and "Kyb-Created: <revision>" on an update, so that a watch can
// tell Added from Modified even when History 1 dropped the creating message.
//
// UpdateAll (added for the scheduler's binder) pipelines many conditional
// writes without reading first: the caller manages uid, creationTimestamp
// and generation from what it read.
//
// Values are written with encoding/json and read with goccy/go-json, which
// decodes the same struct tags about five times faster (exact key names
// only; the store reads only what it wrote).
//
// # Lists and watches
//
// List and Watch read the bucket's stream directly with ordered consumers
// (last message per subject for a list or a watch from 0, start sequence N+1
// for a watch from N), filtered by "$KV.<bucket>.<kind>.<namespace>.>", never
// listing keys and fetching them one by one. The revision List returns is
// the larger of the stream's last sequence before the read and the last one
// delivered: a watch from it misses nothing after the list.
//
// # Heartbeats
//
// Heartbeats is a second bucket ("kyb-heartbeats") whose keys expire with a
// per-message TTL (the Nats-TTL header of nats-server 2.11+, set on every
// beat; the bucket has LimitMarkerTTL so expiries leave markers), so node
// liveness never rewrites Node objects; an expiry leaves a server marker
// (reason MaxAge) that Heartbeats.Watch reports as not alive, promptly and
// without polling. Per-message rather than bucket-wide TTL leaves room for
// keys with other lifetimes (leases) in the same bucket.
//
// # Leases
//
// A Lease (Heartbeats.Lease) is a key "lease.<name>" in the same bucket:
// acquired with a KV create, renewed with a write that expects the holder's
// last revision (its fencing token) and carries a fresh TTL, released with a
// delete at that revision. Lease.Hold runs a function only while the lease
// is held and cancels it at the holder's local deadline, before the server
// can let another process acquire. Heartbeats.Watch skips lease keys. See
// docs/RATIONALE.md, "Leases", for what is fenced and what is not.
//
// Every exported type is safe for concurrent use.
package store
