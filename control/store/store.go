package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// DefaultBucket is the KV bucket of API objects when Config.Bucket is empty.
const DefaultBucket = "kyb-objects"

// leaseMarkerTTL is how long the server keeps the marker of an expired
// lease key in the objects bucket.
const leaseMarkerTTL = time.Minute

// MaxObjectSize is the largest stored object (its JSON), like etcd's
// default request limit of about 1.5 MiB.
const MaxObjectSize = 1 << 20

// Message headers written and read by the store.
const (
	hdrKVOperation = "KV-Operation" // DEL or PURGE on a KV delete marker
	hdrKVDelete    = "DEL"          // value of hdrKVOperation on a delete
	hdrMarker      = jetstream.MarkerReasonHeader
	hdrOp          = "Kyb-Op" // "create" on the first write of a key
	opCreate       = "create"
	// hdrCreated on an update names the revision that created the object, so
	// a watch can tell Added from Modified when History 1 has dropped the
	// creating message.
	hdrCreated = "Kyb-Created"
)

// Config configures the object store.
type Config struct {
	// Bucket is the KV bucket of API objects; default "kyb-objects".
	Bucket string
	// Replicas is the bucket's replica count (3 on a 3-server cluster); default 1.
	Replicas int
	// Logger receives the store's logs; default slog.Default().
	Logger *slog.Logger
	// Fence is how stores made by WithFence fence their writes; default
	// FenceAuto.
	Fence FenceMode
	// Keys, when set, encrypts the values of Secrets at rest
	// (encryption.go); nil stores them in plaintext.
	Keys *Keyring
}

// Store is a typed store of API objects over one JetStream KV bucket. It is
// safe for concurrent use.
type Store struct {
	js         jetstream.JetStream
	kv         jetstream.KeyValue
	stream     jetstream.Stream
	bucket     string
	streamName string
	prefix     string // "$KV.<bucket>."
	log        *slog.Logger
	kinds      map[string]*api.Kind // key token -> kind
	heads      *heads
	fence      *Fence     // nil: writes are not fenced
	fenceMode  FenceMode  // from Config
	batchFence bool       // fenced writes are atomic batches (else checked locally)
	commits    *committer // groups fenced writes
	keys       *Keyring
}

// Open creates (or opens) the bucket and returns a Store over it. An
// existing bucket keeps its data; its configuration is updated to this one.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       cfg.Bucket,
		Description:  "kybernetes API objects",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     KeepReplicas(ctx, js, "KV_"+cfg.Bucket, cfg.Replicas),
		MaxValueSize: MaxObjectSize,
		// Leases live here, beside what they fence, with per-message TTLs.
		LimitMarkerTTL: leaseMarkerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("open store bucket %s: %w", cfg.Bucket, err)
	}
	streamName := "KV_" + cfg.Bucket
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		return nil, fmt.Errorf("open store bucket %s: stream: %w", cfg.Bucket, err)
	}
	// Fenced writes are atomic batches (WithFence); a KV configuration
	// cannot say so, the stream's can.
	if sc := stream.CachedInfo().Config; !sc.AllowAtomicPublish {
		sc.AllowAtomicPublish = true
		if stream, err = js.UpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("open store bucket %s: allow atomic publish: %w", cfg.Bucket, err)
		}
	}
	s := &Store{
		js:         js,
		kv:         kv,
		stream:     stream,
		bucket:     cfg.Bucket,
		streamName: streamName,
		prefix:     "$KV." + cfg.Bucket + ".",
		log:        cfg.Logger.With("component", "store", "bucket", cfg.Bucket),
		kinds:      make(map[string]*api.Kind),
		heads:      newHeads(),
		fenceMode:  cfg.Fence,
		keys:       cfg.Keys,
	}
	for _, k := range api.Kinds() {
		s.kinds[kindToken(k)] = k
	}
	return s, nil
}

// Bucket returns the name of the KV bucket the store writes.
func (s *Store) Bucket() string { return s.bucket }

// kindByToken finds the kind of a key's first token, or nil.
func (s *Store) kindByToken(tok string) *api.Kind {
	if k, ok := s.kinds[tok]; ok {
		return k
	}
	// Kinds added to api after Open.
	for _, k := range api.Kinds() {
		if kindToken(k) == tok {
			return k
		}
	}
	return nil
}

// ListOptions narrows a List.
type ListOptions struct {
	// Namespace limits to one namespace; "" means every namespace.
	Namespace string
	// Labels filters by label selector; nil means everything.
	Labels labels.Selector
	// Fields filters by spec.nodeName, metadata.name, metadata.namespace,
	// status.phase; nil means everything.
	Fields fields.Selector
}

// target checks an object's kind, name and namespace and returns its key.
func target(obj api.Object) (*api.Kind, *api.ObjectMeta, string, error) {
	kind := api.KindOf(obj)
	meta := obj.GetObjectMeta()
	if meta.Name == "" {
		return nil, nil, "", api.NewBadRequest("%s: metadata.name: required", strings.ToLower(kind.Name))
	}
	if !kind.Namespaced {
		meta.Namespace = ""
	} else if meta.Namespace == "" {
		return nil, nil, "", api.NewBadRequest("%s %q: metadata.namespace: required", strings.ToLower(kind.Name), meta.Name)
	}
	if err := checkToken("metadata.name", meta.Name, MaxNameLen); err != nil {
		return nil, nil, "", err
	}
	if err := checkToken("metadata.namespace", meta.Namespace, MaxNamespaceLen); err != nil {
		return nil, nil, "", err
	}
	return kind, meta, objectKey(kind, meta.Namespace, meta.Name), nil
}

func keyFor(kind *api.Kind, namespace, name string) (string, error) {
	if kind == nil {
		return "", api.NewBadRequest("kind: required")
	}
	if name == "" {
		return "", api.NewBadRequest("%s: name: required", strings.ToLower(kind.Name))
	}
	if kind.Namespaced && namespace == "" {
		return "", api.NewBadRequest("%s %q: namespace: required", strings.ToLower(kind.Name), name)
	}
	if err := checkToken("name", name, MaxNameLen); err != nil {
		return "", err
	}
	if kind.Namespaced {
		if err := checkToken("namespace", namespace, MaxNamespaceLen); err != nil {
			return "", err
		}
	}
	return objectKey(kind, namespace, name), nil
}

// displayName is namespace/name for namespaced kinds, name otherwise.
func displayName(kind *api.Kind, namespace, name string) string {
	if kind.Namespaced {
		return namespace + "/" + name
	}
	return name
}

// opName names an operation on an object for error messages, e.g.
// "update pod default/web".
func opName(verb string, kind *api.Kind, namespace, name string) string {
	return verb + " " + strings.ToLower(kind.Name) + " " + displayName(kind, namespace, name)
}

// errModified is the Conflict of a conditional update whose revision is not
// the stored one.
func errModified(kind *api.Kind, name string) error {
	return api.NewConflict(kind.Name, name, "the object has been modified; please apply your changes to the latest version and try again")
}

// updateMsg is the message that writes data over a revision of the object
// created at revision createdRev (0: unknown, no header).
func updateMsg(subject string, createdRev uint64, data []byte) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Data: data}
	if createdRev != 0 {
		msg.Header = nats.Header{hdrCreated: []string{strconv.FormatUint(createdRev, 10)}}
	}
	return msg
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// errCodeMessageTooLarge is JetStream's JSStreamMessageExceedsMaximumErr.
const errCodeMessageTooLarge = 10054

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// storeErr wraps a JetStream error with what was being done; when JetStream
// is unreachable or timed out it becomes an api Unavailable Status.
func storeErr(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
		return api.NewUnavailable("%s: jetstream unavailable: %v", op, err)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeMessageTooLarge {
		return &api.Status{Code: 413, Reason: api.ReasonTooLarge,
			Message: fmt.Sprintf("%s: object larger than %d bytes", op, MaxObjectSize)}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Create stores a new object. It fails with an api AlreadyExists Status when
// the key exists, and a BadRequest Status when metadata.name (or, for a
// namespaced kind, metadata.namespace) is empty. On success obj is updated in
// place: uid, creationTimestamp (UTC, whole seconds), generation 1,
// resourceVersion (the KV revision); apiVersion and kind are filled in when
// empty. A cluster-scoped object's namespace is cleared. On failure obj is
// left as it was. Safe for concurrent use.
func (s *Store) Create(ctx context.Context, obj api.Object) error {
	defer metrics.ObserveStore("create", time.Now())
	kind, meta, key, err := target(obj)
	if err != nil {
		return err
	}
	tm := obj.GetTypeMeta()
	saved, savedTM := *meta, *tm
	kind.FillTypeMeta(tm)
	meta.UID = newUID()
	meta.CreationTimestamp = time.Now().UTC().Truncate(time.Second)
	meta.Generation = 1
	meta.ResourceVersion = ""
	spec, err := s.heads.specHash(obj)
	if err != nil {
		*meta, *tm = saved, savedTM
		return fmt.Errorf("%s: %w", opName("create", kind, meta.Namespace, meta.Name), err)
	}
	rev, err := s.create(ctx, kind, meta, key, obj)
	if err != nil {
		*meta, *tm = saved, savedTM
		return err
	}
	s.heads.put(key, head{rev: rev, uid: meta.UID, created: meta.CreationTimestamp, generation: 1, spec: spec, createdRev: rev})
	meta.ResourceVersion = strconv.FormatUint(rev, 10)
	return nil
}

func (s *Store) create(ctx context.Context, kind *api.Kind, meta *api.ObjectMeta, key string, obj api.Object) (uint64, error) {
	op := opName("create", kind, meta.Namespace, meta.Name)
	data, err := s.marshal(obj)
	if err != nil {
		return 0, fmt.Errorf("%s: encode: %w", op, err)
	}
	subject := s.prefix + key
	var expect uint64
	for attempt := 0; ; attempt++ {
		msg := &nats.Msg{Subject: subject, Header: nats.Header{hdrOp: []string{opCreate}}, Data: data}
		seq, err := s.publish(ctx, op, msg, expect)
		if err == nil {
			return seq, nil
		}
		if errors.Is(err, ErrLeaseLost) {
			return 0, err
		}
		if !isWrongLastSeq(err) || attempt > 3 {
			return 0, storeErr(op, err)
		}
		// The key has a last message: a live value (exists) or a delete
		// marker, which a create may replace.
		last, gerr := s.stream.GetLastMsgForSubject(ctx, subject)
		if gerr != nil {
			if errors.Is(gerr, jetstream.ErrMsgNotFound) {
				expect = 0
				continue
			}
			return 0, storeErr(op, gerr)
		}
		if !isMarker(last.Header) {
			return 0, api.NewAlreadyExists(kind.Name, meta.Name)
		}
		expect = last.Sequence
	}
}

// isMarker reports whether a message with these headers is a KV delete,
// purge or server (TTL/limit) marker.
func isMarker(h nats.Header) bool {
	if len(h) == 0 {
		return false
	}
	return h.Get(hdrKVOperation) != "" || h.Get(hdrMarker) != ""
}

// Get returns the object, or an api NotFound Status. The returned object's
// resourceVersion is the KV revision. Safe for concurrent use.
func (s *Store) Get(ctx context.Context, kind *api.Kind, namespace, name string) (api.Object, error) {
	defer metrics.ObserveStore("get", time.Now())
	key, err := keyFor(kind, namespace, name)
	if err != nil {
		return nil, err
	}
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, api.NewNotFound(kind.Name, name)
		}
		return nil, storeErr("get "+strings.ToLower(kind.Name)+" "+displayName(kind, namespace, name), err)
	}
	return s.decode(kind, e.Value(), e.Revision())
}

// decode decodes a stored value into a new object of kind and sets its
// resourceVersion to rev (the stored field is never trusted).
// A Secret's encrypted values are decrypted.
func (s *Store) decode(kind *api.Kind, data []byte, rev uint64) (api.Object, error) {
	obj := kind.New()
	if sec, ok := obj.(*api.Secret); ok {
		var sealed sealedSecret
		if err := gojson.Unmarshal(data, &sealed); err != nil {
			return nil, fmt.Errorf("decode stored secret at revision %d: %w", rev, err)
		}
		if _, err := s.openSecret(sealed.EncryptedData, &sealed.Secret); err != nil {
			return nil, fmt.Errorf("decode stored secret %s/%s at revision %d: %w", sealed.Namespace, sealed.Name, rev, err)
		}
		*sec = sealed.Secret
	} else if err := gojson.Unmarshal(data, obj); err != nil {
		// goccy/go-json decodes into the same struct tags as encoding/json,
		// about five times faster; List and Watch of 50,000 pods depend on it.
		return nil, fmt.Errorf("decode stored %s at revision %d: %w", strings.ToLower(kind.Name), rev, err)
	}
	obj.GetObjectMeta().ResourceVersion = strconv.FormatUint(rev, 10)
	return obj, nil
}

// storedHead is the part of a stored object Update keeps or compares
// (read when its head is not cached).
type storedHead struct {
	Metadata struct {
		UID               string    `json:"uid"`
		CreationTimestamp time.Time `json:"creationTimestamp"`
		Generation        int64     `json:"generation"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

// parseRV parses a resourceVersion; an empty or malformed one is a
// BadRequest naming the object.
func parseRV(kind *api.Kind, name, rv string) (uint64, error) {
	if rv == "" {
		return 0, api.NewBadRequest("%s %q: metadata.resourceVersion: required for update", strings.ToLower(kind.Name), name)
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil || n == 0 {
		return 0, api.NewBadRequest("%s %q: metadata.resourceVersion: %q is not a revision", strings.ToLower(kind.Name), name, rv)
	}
	return n, nil
}

// Update writes obj with compare-and-set on obj's resourceVersion: a stale
// one fails with an api Conflict Status, a missing object with NotFound, and
// an empty or malformed resourceVersion with BadRequest (an update is always
// conditional; read the object first). uid and creationTimestamp are kept
// from the stored object; generation grows by one when spec changed (the
// JSON of spec differs). On success obj is updated in place; on failure it
// is left as it was. Safe for concurrent use.
//
// Cost: one round trip when this Store wrote the revision being updated (it
// remembers uid, creationTimestamp, generation and a spec hash of the last
// revision it wrote per object), else two (read that revision, then write).
func (s *Store) Update(ctx context.Context, obj api.Object) error {
	defer metrics.ObserveStore("update", time.Now())
	kind, meta, key, err := target(obj)
	if err != nil {
		return err
	}
	rev, err := parseRV(kind, meta.Name, meta.ResourceVersion)
	if err != nil {
		return err
	}
	op := opName("update", kind, meta.Namespace, meta.Name)
	subject := s.prefix + key
	newSpec, err := s.heads.specHash(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	old, cached := s.heads.get(key, rev)
	if !cached {
		if old, err = s.readHead(ctx, kind, meta.Name, subject, rev, obj); err != nil {
			var st *api.Status
			if errors.As(err, &st) {
				return err
			}
			return storeErr(op, err)
		}
	}
	tm := obj.GetTypeMeta()
	saved, savedTM := *meta, *tm
	kind.FillTypeMeta(tm)
	meta.UID = old.uid
	meta.CreationTimestamp = old.created
	meta.ResourceVersion = ""
	meta.Generation = old.generation
	if newSpec != old.spec || meta.Generation == 0 {
		meta.Generation++
	}
	data, err := s.marshal(obj)
	if err != nil {
		*meta, *tm = saved, savedTM
		return fmt.Errorf("%s: encode: %w", op, err)
	}
	seq, err := s.publish(ctx, op, updateMsg(subject, old.createdRev, data), rev)
	if err != nil {
		*meta, *tm = saved, savedTM
		if errors.Is(err, ErrLeaseLost) {
			return err
		}
		if isWrongLastSeq(err) {
			return errModified(kind, meta.Name)
		}
		return storeErr(op, err)
	}
	s.heads.put(key, head{rev: seq, uid: meta.UID, created: meta.CreationTimestamp,
		generation: meta.Generation, spec: newSpec, createdRev: old.createdRev})
	meta.ResourceVersion = strconv.FormatUint(seq, 10)
	return nil
}

// readHead reads the head of the stored object at subject, which must be
// at revision rev: NotFound when it is missing or deleted, Conflict when it
// is at another revision. obj gives the kind's spec type.
func (s *Store) readHead(ctx context.Context, kind *api.Kind, name, subject string, rev uint64, obj api.Object) (head, error) {
	last, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return head{}, api.NewNotFound(kind.Name, name)
		}
		return head{}, err
	}
	if isMarker(last.Header) {
		return head{}, api.NewNotFound(kind.Name, name)
	}
	if last.Sequence != rev {
		return head{}, errModified(kind, name)
	}
	var stored storedHead
	if err := gojson.Unmarshal(last.Data, &stored); err != nil {
		return head{}, fmt.Errorf("decode stored object: %w", err)
	}
	spec, err := s.heads.storedSpecHash(obj, stored.Spec)
	if err != nil {
		return head{}, err
	}
	return head{rev: rev, uid: stored.Metadata.UID, created: stored.Metadata.CreationTimestamp,
		generation: stored.Metadata.Generation, spec: spec, createdRev: createdRev(last.Header, last.Sequence)}, nil
}

// createdRev returns the revision that created the object whose message
// (at seq) has these headers, or 0 when it is unknown (written outside the
// store).
func createdRev(h nats.Header, seq uint64) uint64 {
	if len(h) == 0 {
		return 0
	}
	if h.Get(hdrOp) == opCreate {
		return seq
	}
	if v := h.Get(hdrCreated); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		return n
	}
	return 0
}

// Delete removes the object and returns its last stored value, with
// resourceVersion set to the revision of the deletion (as a watch reports
// it). A non-empty resourceVersion is a precondition: Conflict when stale,
// BadRequest when malformed. A missing object is NotFound. The delete marker
// keeps the last value, so every watcher (from any revision) sees it. Safe
// for concurrent use.
func (s *Store) Delete(ctx context.Context, kind *api.Kind, namespace, name, resourceVersion string) (api.Object, error) {
	defer metrics.ObserveStore("delete", time.Now())
	key, err := keyFor(kind, namespace, name)
	if err != nil {
		return nil, err
	}
	var want uint64
	if resourceVersion != "" {
		if want, err = parseRV(kind, name, resourceVersion); err != nil {
			return nil, err
		}
	}
	op := opName("delete", kind, namespace, name)
	subject := s.prefix + key
	for attempt := 0; ; attempt++ {
		e, err := s.kv.Get(ctx, key)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil, api.NewNotFound(kind.Name, name)
			}
			return nil, storeErr(op, err)
		}
		if want != 0 && e.Revision() != want {
			return nil, api.NewConflict(kind.Name, name, fmt.Sprintf("precondition failed: resourceVersion %d, stored %d", want, e.Revision()))
		}
		obj, err := s.decode(kind, e.Value(), e.Revision())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		msg := &nats.Msg{Subject: subject, Header: nats.Header{hdrKVOperation: []string{hdrKVDelete}}, Data: e.Value()}
		seq, err := s.publish(ctx, op, msg, e.Revision())
		if err == nil {
			s.heads.forget(key)
			obj.GetObjectMeta().ResourceVersion = strconv.FormatUint(seq, 10)
			return obj, nil
		}
		if errors.Is(err, ErrLeaseLost) {
			return nil, err
		}
		if !isWrongLastSeq(err) {
			return nil, storeErr(op, err)
		}
		if want != 0 {
			return nil, api.NewConflict(kind.Name, name, "the object has been modified")
		}
		if attempt >= 16 {
			return nil, api.NewConflict(kind.Name, name, "the object keeps changing; delete gave up")
		}
		// Changed between read and delete: read the new last value and retry.
	}
}

// Matches reports whether obj satisfies the label and field selectors of
// opts (the namespace is not checked). Nil selectors match everything.
func (opts *ListOptions) Matches(obj api.Object) bool {
	h := headOf(obj)
	return opts.matchesHead(api.KindOf(obj), &h)
}
