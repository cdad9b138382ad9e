package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Version is the format version written in a backup's manifest.
const Version = 1

// manifestName is the first entry of a backup.
const manifestName = "kyb-backup.json"

// chunkSize is the size of the chunks a snapshot is sent in, and a restore
// sends (JetStream clamps a snapshot's to 1 KiB..1 MiB).
const chunkSize = 128 << 10

// Manifest is a backup's first entry.
type Manifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Streams []string  `json:"streams"`
}

// snapshotReply is JetStream's reply to a snapshot request: the stream's
// configuration and state, kept raw so a restore hands the server exactly
// what it said.
type snapshotReply struct {
	Config json.RawMessage     `json:"config"`
	State  json.RawMessage     `json:"state"`
	Error  *jetstream.APIError `json:"error,omitempty"`
}

// order puts the objects bucket first (the state every other stream
// describes), then the rest by name.
func order(names []string) {
	slices.SortFunc(names, func(a, b string) int {
		ka, kb := !strings.HasPrefix(a, "KV_kyb-objects"), !strings.HasPrefix(b, "KV_kyb-objects")
		if ka != kb {
			if !ka {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
}

// Write writes a backup of every stream of nc's account to w and returns
// the manifest. Each stream's snapshot is spooled to a temporary file first
// (a tar entry needs its size), so the caller's writer may be slow.
func Write(ctx context.Context, nc *nats.Conn, w io.Writer) (*Manifest, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var names []string
	lister := js.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("backup: list streams: %w", err)
	}
	order(names)
	m := &Manifest{Version: Version, Created: time.Now().UTC(), Streams: names}
	tw := tar.NewWriter(w)
	mb, _ := json.Marshal(m)
	if err := writeEntry(tw, manifestName, mb); err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := writeStream(ctx, nc, tw, name); err != nil {
			return nil, fmt.Errorf("backup: stream %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	return nil
}

// writeStream takes one stream's snapshot (through a temporary file) and
// adds it to tw.
func writeStream(ctx context.Context, nc *nats.Conn, tw *tar.Writer, name string) error {
	tmp, err := os.CreateTemp("", "kyb-snapshot-*")
	if err != nil {
		return err
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	reply, size, err := snapshot(ctx, nc, name, tmp)
	if err != nil {
		return err
	}
	if err := writeEntry(tw, name+".json", reply); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name + ".snapshot", Mode: 0o600, Size: size, ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, tmp, size); err != nil {
		return err
	}
	return nil
}

// snapshot asks the server for a snapshot of stream name, acknowledging
// each chunk (the server's flow control), and copies it to w; it returns
// the server's reply and the snapshot's size.
func snapshot(ctx context.Context, nc *nats.Conn, name string, w io.Writer) ([]byte, int64, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, 0, err
	}
	req, _ := json.Marshal(map[string]any{"deliver_subject": inbox, "no_consumers": true, "chunk_size": chunkSize})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.SNAPSHOT."+name, req)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot request: %w", err)
	}
	var r snapshotReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, 0, fmt.Errorf("snapshot reply: %w", err)
	}
	if r.Error != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", r.Error)
	}
	var size int64
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot chunk: %w", err)
		}
		if len(msg.Data) == 0 { // the end: status 204, or an error status
			if st := msg.Header.Get("Status"); st != "" && st != "204" {
				return nil, 0, fmt.Errorf("snapshot ended with status %s %s", st, msg.Header.Get("Description"))
			}
			break
		}
		if _, err := w.Write(msg.Data); err != nil {
			return nil, 0, err
		}
		size += int64(len(msg.Data))
		if msg.Reply != "" {
			if err := nc.Publish(msg.Reply, nil); err != nil {
				return nil, 0, err
			}
		}
	}
	out, _ := json.Marshal(struct {
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}{r.Config, r.State})
	return out, size, nil
}

// ErrNotEmpty is returned (wrapped) by Restore when a stream of the backup
// exists already and force is not set.
var ErrNotEmpty = errors.New("the cluster is not empty")

// Options changes how Restore restores.
type Options struct {
	// Force deletes the streams of the backup that exist before restoring
	// them; without it a restore over any existing stream is refused and
	// nothing is changed.
	Force bool
	// Replicas, when positive, replaces every stream's replica count (a
	// backup of a 3-server cluster restored into one server, or the
	// reverse).
	Replicas int
}

// Restore restores every stream of the backup r into nc's account and
// returns the backup's manifest. Without opts.Force it refuses (ErrNotEmpty,
// changing nothing) when any stream of the backup exists.
func Restore(ctx context.Context, nc *nats.Conn, r io.Reader, opts Options) (*Manifest, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != manifestName {
		return nil, fmt.Errorf("restore: not a kyb backup (no %s first): %v", manifestName, err)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("restore: %s: %w", manifestName, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("restore: backup format version %d: this kyb reads version %d", m.Version, Version)
	}
	var existing []string
	for _, name := range m.Streams {
		if _, err := js.Stream(ctx, name); err == nil {
			existing = append(existing, name)
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("restore: look up stream %s: %w", name, err)
		}
	}
	if len(existing) > 0 && !opts.Force {
		return nil, fmt.Errorf("restore: %w: streams %s exist (restore into a fresh data directory, or force it to replace them)",
			ErrNotEmpty, strings.Join(existing, ", "))
	}
	for _, name := range existing {
		if err := js.DeleteStream(ctx, name); err != nil {
			return nil, fmt.Errorf("restore: replace stream %s: %w", name, err)
		}
	}
	for _, name := range m.Streams {
		hdr, err := tr.Next()
		if err != nil || hdr.Name != name+".json" {
			return nil, fmt.Errorf("restore: stream %s: want entry %s.json: %v", name, name, err)
		}
		var reply struct {
			Config map[string]any  `json:"config"`
			State  json.RawMessage `json:"state"`
		}
		if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&reply); err != nil {
			return nil, fmt.Errorf("restore: stream %s: %w", name, err)
		}
		if opts.Replicas > 0 {
			reply.Config["num_replicas"] = opts.Replicas
		}
		if hdr, err = tr.Next(); err != nil || hdr.Name != name+".snapshot" {
			return nil, fmt.Errorf("restore: stream %s: want entry %s.snapshot: %v", name, name, err)
		}
		if err := restoreStream(ctx, nc, name, reply.Config, reply.State, tr); err != nil {
			return nil, fmt.Errorf("restore: stream %s: %w", name, err)
		}
	}
	return &m, nil
}

// restoreStream sends one stream's snapshot to the server's restore API,
// one acknowledged chunk at a time.
func restoreStream(ctx context.Context, nc *nats.Conn, name string, config map[string]any, state json.RawMessage, r io.Reader) error {
	req, err := json.Marshal(map[string]any{"config": config, "state": state})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.RESTORE."+name, req)
	if err != nil {
		return fmt.Errorf("restore request: %w", err)
	}
	var rr struct {
		DeliverSubject string              `json:"deliver_subject"`
		Error          *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &rr); err != nil {
		return fmt.Errorf("restore reply: %w", err)
	}
	if rr.Error != nil {
		return rr.Error
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			ack, err := nc.RequestWithContext(cctx, rr.DeliverSubject, buf[:n])
			ccancel()
			if err != nil {
				return fmt.Errorf("restore chunk: %w", err)
			}
			if err := replyErr(ack.Data); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	// An empty chunk ends the restore; the reply is the restored stream.
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer fcancel()
	done, err := nc.RequestWithContext(fctx, rr.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("restore end: %w", err)
	}
	return replyErr(done.Data)
}

// replyErr is the error a JetStream reply carries, if any.
func replyErr(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	var r struct {
		Error *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil // not JSON: a plain acknowledgement
	}
	if r.Error != nil {
		return r.Error
	}
	return nil
}
