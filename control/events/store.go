package events

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/record"
)

// Config configures a Store. The zero value is usable.
type Config struct {
	// MaxAge bounds the age of an event since it was last recorded;
	// default 24h.
	MaxAge time.Duration
	// MaxPerObject bounds the events kept about one object; default 100.
	MaxPerObject int
	// MaxBytes bounds the stream; default 256 MiB.
	MaxBytes int64
	// Replicas of the stream; default 1.
	Replicas int
	// MaxList bounds the events one List reads; default 10000.
	MaxList int
}

// Store records, lists and watches events. Create it with Open; its
// methods are safe for concurrent use.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config
}

// Open creates or updates the events stream and returns a Store over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.MaxPerObject == 0 {
		cfg.MaxPerObject = 100
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxList == 0 {
		cfg.MaxList = 10000
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              api.EventsStream,
		Description:       "kybernetes events (kyb get events)",
		Subjects:          []string{api.EventLogPrefix + ".>"},
		Storage:           jetstream.FileStorage,
		MaxAge:            cfg.MaxAge,
		MaxMsgsPerSubject: 1,
		MaxBytes:          cfg.MaxBytes,
		Discard:           jetstream.DiscardOld,
		Replicas:          cfg.Replicas,
		AllowDirect:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("events: create stream %s: %w", api.EventsStream, err)
	}
	return &Store{js: js, stream: st, cfg: cfg}, nil
}

// hash16 is 16 hex digits of the SHA-256 of parts.
func hash16(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// objectPrefix is the subject prefix of every event about ref.
func objectPrefix(ref api.ObjectReference) string {
	return api.EventLogPrefix + "." + api.EventNamespace(ref) + "." + hash16(ref.Kind, ref.Name)
}

// subject is the subject of ev (named already).
func subject(ev *api.Event) string {
	return objectPrefix(ev.InvolvedObject) + "." + hash16(ev.Name)
}

// nsFilter is the subject filter of namespace ns ("" for all).
func nsFilter(ns string) string {
	if ns == "" {
		return api.EventLogPrefix + ".>"
	}
	return api.EventLogPrefix + "." + ns + ".>"
}

// Record stores ev, folded with the stored copy of the same event (same
// involved object, type, reason, message and source, whatever name the
// recorder gave it): the stored count grows by one, or to ev's count when
// that is larger (the recorder counted repeats the store missed), the first
// timestamp is the earliest. It validates ev first (a 422 *api.Status). It
// returns the event as stored, with its resourceVersion. It is a
// record.Sink through SinkFunc, and safe for concurrent use.
func (s *Store) Record(ctx context.Context, in *api.Event) (*api.Event, error) {
	if err := api.ValidateEvent(in); err != nil {
		return nil, err
	}
	ev := *in
	ref := ev.InvolvedObject
	key := record.FoldKey(ref, ev.Type, ev.Reason, ev.Message, ev.Source)
	ev.TypeMeta = api.TypeMeta{APIVersion: "v1", Kind: "Event"}
	ev.ObjectMeta = api.ObjectMeta{Name: record.EventName(ref, key), Namespace: api.EventNamespace(ref)}
	now := time.Now().UTC()
	if ev.LastTimestamp.IsZero() {
		ev.LastTimestamp = now
	}
	if ev.FirstTimestamp.IsZero() || ev.FirstTimestamp.After(ev.LastTimestamp) {
		ev.FirstTimestamp = ev.LastTimestamp
	}
	ev.Count = max(ev.Count, 1)
	if ev.ReportingComponent == "" {
		ev.ReportingComponent = ev.Source.Component
	}
	subj := subject(&ev)
	for range 8 {
		prior, seq, err := s.last(ctx, subj)
		if err != nil {
			return nil, err
		}
		out := ev
		if prior != nil {
			out.UID = prior.UID
			out.Count = max(ev.Count, prior.Count+1)
			if !prior.FirstTimestamp.IsZero() && prior.FirstTimestamp.Before(out.FirstTimestamp) {
				out.FirstTimestamp = prior.FirstTimestamp
			}
			if prior.LastTimestamp.After(out.LastTimestamp) {
				out.LastTimestamp = prior.LastTimestamp
			}
		} else {
			out.UID = newUID()
			if err := s.makeRoom(ctx, ref); err != nil {
				return nil, err
			}
		}
		out.CreationTimestamp = out.FirstTimestamp
		data, err := json.Marshal(&out)
		if err != nil {
			return nil, fmt.Errorf("record event %s: %w", out.Name, err)
		}
		ack, err := s.js.Publish(ctx, subj, data, jetstream.WithExpectLastSequencePerSubject(seq))
		if isWrongLastSeq(err) {
			continue // recorded meanwhile by someone else: fold into that
		}
		if err != nil {
			return nil, unavailable("record event "+out.Name, err)
		}
		out.ResourceVersion = strconv.FormatUint(ack.Sequence, 10)
		return &out, nil
	}
	return nil, api.NewConflict("Event", ev.Name, "recorded concurrently too often; retry")
}

// Sink returns s as a record.Sink, for recorders inside the control plane.
func (s *Store) Sink() record.Sink {
	return record.SinkFunc(func(ctx context.Context, ev *api.Event) error {
		_, err := s.Record(ctx, ev)
		return err
	})
}

// last returns the event stored on subj and its sequence; nil and 0 when
// there is none.
func (s *Store) last(ctx context.Context, subj string) (*api.Event, uint64, error) {
	msg, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, unavailable("read event", err)
	}
	var ev api.Event
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		// Not an event of ours: overwrite it.
		return nil, msg.Sequence, nil //nolint:nilerr
	}
	return &ev, msg.Sequence, nil
}

// makeRoom deletes the least recently recorded event about ref while ref
// has MaxPerObject events or more.
func (s *Store) makeRoom(ctx context.Context, ref api.ObjectReference) error {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(objectPrefix(ref)+".*"))
	if err != nil {
		return unavailable("count events of "+ref.Name, err)
	}
	subjects := info.State.Subjects
	for len(subjects) >= s.cfg.MaxPerObject {
		var oldest uint64
		var oldestSubj string
		for subj := range subjects {
			m, err := s.stream.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				continue
			}
			if oldest == 0 || m.Sequence < oldest {
				oldest, oldestSubj = m.Sequence, subj
			}
		}
		if oldest == 0 {
			return nil
		}
		if err := s.stream.DeleteMsg(ctx, oldest); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return unavailable("drop the oldest event of "+ref.Name, err)
		}
		delete(subjects, oldestSubj)
	}
	return nil
}

// List returns the events of namespace ns ("" for every namespace) that
// match (nil for all), oldest first by lastTimestamp, at most Config.MaxList
// of the newest, and the stream sequence the list was read at: a watch from
// it misses nothing.
func (s *Store) List(ctx context.Context, ns string, match func(*api.Event) bool) ([]*api.Event, uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, 0, unavailable("list events", err)
	}
	upTo := info.State.LastSeq
	out := []*api.Event{}
	if upTo == 0 {
		return out, 0, nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{nsFilter(ns)}})
	if err != nil {
		return nil, 0, unavailable("list events", err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return nil, 0, unavailable("list events", err)
	}
	pending := int(ci.NumPending)
	for pending > 0 {
		batch, err := cons.Fetch(min(pending, 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, 0, unavailable("list events", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil || md.Sequence.Stream > upTo {
				continue
			}
			ev, ok := decode(msg.Data(), md.Sequence.Stream)
			if ok && (match == nil || match(ev)) {
				out = append(out, ev)
			}
		}
		if err := batch.Error(); err != nil {
			return nil, 0, unavailable("list events", err)
		}
		if got == 0 {
			break
		}
		pending -= got
	}
	slices.SortStableFunc(out, func(a, b *api.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp) })
	if len(out) > s.cfg.MaxList {
		out = out[len(out)-s.cfg.MaxList:]
	}
	return out, upTo, nil
}

// Watch calls fn with every event of namespace ns ("" for all) recorded
// after stream sequence from, in order, until ctx ends (returning nil) or
// fn returns an error (returned as is). Each event carries its
// resourceVersion.
func (s *Store) Watch(ctx context.Context, ns string, from uint64, fn func(*api.Event) error) error {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{nsFilter(ns)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from + 1,
	})
	if err != nil {
		return unavailable("watch events", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return unavailable("watch events", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return unavailable("watch events", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		if ev, ok := decode(msg.Data(), md.Sequence.Stream); ok {
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// decode reads one stored event, with its resourceVersion seq.
func decode(data []byte, seq uint64) (*api.Event, bool) {
	var ev api.Event
	if json.Unmarshal(data, &ev) != nil || ev.Name == "" {
		return nil, false
	}
	ev.ResourceVersion = strconv.FormatUint(seq, 10)
	return &ev, true
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// unavailable wraps a JetStream error as a 503 naming what was being done.
func unavailable(what string, err error) error {
	return api.NewUnavailable("%s: %v", what, err)
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
