package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/backup"
)

// backupChunk is the size of a backup's data messages.
const backupChunk = 128 << 10

// backupKeep is how long a backup waits for its client to resume it.
const backupKeep = 10 * time.Minute

// backups holds the backups being downloaded: each is taken once into a
// temporary file (so the snapshot is one point in time however many
// stream windows the download takes) and removed when sent or abandoned.
type backups struct {
	mu sync.Mutex
	m  map[string]*backupFile
}

type backupFile struct {
	path    string
	size    int64
	touched time.Time
}

func newBackups() *backups { return &backups{m: map[string]*backupFile{}} }

// add registers a backup file and removes those abandoned.
func (b *backups) add(f *backupFile) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, old := range b.m {
		if time.Since(old.touched) > backupKeep {
			_ = os.Remove(old.path)
			delete(b.m, id)
		}
	}
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	b.m[id] = f
	return id
}

func (b *backups) get(id string) *backupFile {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.m[id]
	if f != nil {
		f.touched = time.Now()
	}
	return f
}

func (b *backups) done(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.m[id]; f != nil {
		_ = os.Remove(f.path)
		delete(b.m, id)
	}
}

// removeAll deletes every backup file (at Stop).
func (b *backups) removeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, f := range b.m {
		_ = os.Remove(f.path)
		delete(b.m, id)
	}
}

// handleBackup answers kyb.api.v1.backup: a stream of the bytes of a backup
// of every stream of the store (control/backup), resumable by offset.
func (s *Server) handleBackup(req micro.Request) {
	var r api.BackupRequest
	if len(req.Data()) > 0 {
		if err := decodeBody(req.Data(), &r, "BackupRequest"); err != nil {
			syncErr(req, err)
			return
		}
	}
	if err := s.authorize(req, api.VerbGet, api.ResourceBackups, "", ""); err != nil {
		syncErr(req, err)
		return
	}
	var id string
	var off int64
	if r.Resume != "" {
		i := strings.IndexByte(r.Resume, ':')
		var err error
		if i > 0 {
			id = r.Resume[:i]
			off, err = strconv.ParseInt(r.Resume[i+1:], 10, 64)
		}
		f := s.backups.get(id)
		switch {
		case i <= 0 || i > 16 || err != nil || off < 0 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "":
			syncErr(req, api.NewBadRequest("resume: %.64q is not a backup resume point", r.Resume))
			return
		case f == nil:
			syncErr(req, &api.Status{Code: 410, Reason: api.ReasonNotFound,
				Message: fmt.Sprintf("backup %s is gone (sent, or not resumed within %v): take a new one", id, backupKeep)})
			return
		case off > f.size:
			syncErr(req, api.NewBadRequest("resume: offset %d beyond the backup's %d bytes", off, f.size))
			return
		}
	}
	s.serveStream(req, s.streams, "backup", func(ctx context.Context, st *stream) (string, error) {
		if id == "" {
			f, err := s.takeBackup(ctx)
			if err != nil {
				return "", err
			}
			id = s.backups.add(f)
		}
		return s.sendBackup(st, id, off)
	})
}

// takeBackup writes a backup into a temporary file.
func (s *Server) takeBackup(ctx context.Context) (*backupFile, error) {
	tmp, err := os.CreateTemp("", "kyb-backup-*")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	start := time.Now()
	m, err := backup.Write(ctx, s.nc, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	size, _ := tmp.Seek(0, io.SeekCurrent)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return nil, api.NewUnavailable("backup: %v", err)
	}
	s.log.Info("backup taken", "streams", m.Streams, "bytes", size, "took", time.Since(start))
	return &backupFile{path: tmp.Name(), size: size, touched: time.Now()}, nil
}

// sendBackup streams backup id from offset off until it is sent (then it
// is removed) or the window is full (the resume point is returned).
func (s *Server) sendBackup(st *stream, id string, off int64) (string, error) {
	f := s.backups.get(id)
	if f == nil {
		return "", api.NewNotFound("backup", id)
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return "", fmt.Errorf("backup %s: %w", id, err)
	}
	defer fh.Close()
	buf := make([]byte, backupChunk)
	for off < f.size {
		n, err := fh.ReadAt(buf, off)
		if n == 0 && err != nil {
			return "", fmt.Errorf("backup %s: read at %d: %w", id, off, err)
		}
		hdr := nats.Header{api.StreamSeqHeader: []string{strconv.FormatInt(off, 10)}}
		serr := st.send(hdr, buf[:n])
		off += int64(n)
		if errors.Is(serr, errWindow) && off < f.size {
			return id + ":" + strconv.FormatInt(off, 10), nil
		}
		if serr != nil && !errors.Is(serr, errWindow) {
			return "", serr
		}
	}
	s.backups.done(id)
	return "", nil
}
