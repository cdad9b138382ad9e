package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/backup"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var podKind = api.KindOf(&api.Pod{})

func pod(name string) *api.Pod {
	return &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "img"}}}}
}

// A backup restored into a fresh server holds every object at the same
// revision, every object-store object, and the stream sequences go on from
// where they were (so a watch from a revision of before the backup works).
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	src := testutil.StartNATS(t)
	nc := testutil.Connect(t, src)
	js, _ := jetstream.New(nc)
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 50 {
		p := pod(fmt.Sprintf("p%d", i))
		if err := st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		want[p.Name] = p.ResourceVersion
	}
	if _, err := st.Delete(ctx, podKind, "default", "p3", ""); err != nil {
		t.Fatal(err)
	}
	delete(want, "p3")
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "kyb-modules"})
	if err != nil {
		t.Fatal(err)
	}
	module := bytes.Repeat([]byte("wasm"), 100_000) // several chunks
	if _, err := obs.PutBytes(ctx, "hello", module); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := backup.Write(ctx, nc, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Streams) != 2 || m.Streams[0] != "KV_kyb-objects" {
		t.Fatalf("manifest streams %v; want the objects bucket first and the object store", m.Streams)
	}
	t.Logf("backup: %d bytes, streams %v", buf.Len(), m.Streams)

	dst := testutil.StartNATS(t)
	nc2 := testutil.Connect(t, dst)
	if _, err := backup.Restore(ctx, nc2, bytes.NewReader(buf.Bytes()), backup.Options{}); err != nil {
		t.Fatal(err)
	}
	js2, _ := jetstream.New(nc2)
	st2, err := store.Open(ctx, js2, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	items, rev, err := st2.List(ctx, podKind, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range items {
		got[o.GetObjectMeta().Name] = o.GetObjectMeta().ResourceVersion
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored pods %v; want %v", got, want)
	}
	// Writes go on after the restored revisions, and a watch from a
	// revision of before the backup sees them.
	events, err := st2.Watch(ctx, podKind, rev)
	if err != nil {
		t.Fatal(err)
	}
	next := pod("after")
	if err := st2.Create(ctx, next); err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Type == store.Synced {
			continue
		}
		if ev.Object.GetObjectMeta().Name != "after" || ev.Revision <= rev {
			t.Fatalf("watch from %d after the restore: %+v", rev, ev)
		}
		break
	}
	obs2, err := js2.ObjectStore(ctx, "kyb-modules")
	if err != nil {
		t.Fatal(err)
	}
	data, err := obs2.GetBytes(ctx, "hello")
	if err != nil || !bytes.Equal(data, module) {
		t.Fatalf("restored module: %d bytes, %v; want %d", len(data), err, len(module))
	}

	// Over a non-empty cluster: refused, nothing changed; forced: replaced.
	if _, err := backup.Restore(ctx, nc2, bytes.NewReader(buf.Bytes()), backup.Options{}); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore over a non-empty cluster: %v; want ErrNotEmpty", err)
	}
	if _, err := st2.Get(ctx, podKind, "default", "after"); err != nil {
		t.Fatalf("a refused restore changed the cluster: %v", err)
	}
	if _, err := backup.Restore(ctx, nc2, bytes.NewReader(buf.Bytes()), backup.Options{Force: true}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	st3, err := store.Open(ctx, js2, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st3.Get(ctx, podKind, "default", "after"); !api.IsNotFound(err) {
		t.Fatalf("after a forced restore the later pod is %v; want NotFound", err)
	}
}

// Files that are not backups are refused with a clear error, before
// anything changes.
func TestRestoreRefusesBadFiles(t *testing.T) {
	ctx := context.Background()
	nc := testutil.Connect(t, testutil.StartNATS(t))
	tarOf := func(name, body string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body))})
		_, _ = tw.Write([]byte(body))
		_ = tw.Close()
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not a kyb backup"},
		{"text", []byte("hello, world"), "not a kyb backup"},
		{"other tar", tarOf("etc/passwd", "root"), "not a kyb backup"},
		{"future version", tarOf("kyb-backup.json", `{"version":99}`), "version 99"},
		{"missing stream", tarOf("kyb-backup.json", `{"version":1,"streams":["KV_x"]}`), "want entry KV_x.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backup.Restore(ctx, nc, bytes.NewReader(tc.file), backup.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one saying %q", err, tc.want)
			}
		})
	}
}

// BenchmarkBackupRestore backs up and restores a store of 10,000 pods and
// reports each time.
func BenchmarkBackupRestore(b *testing.B) {
	ctx := context.Background()
	nc := testutil.Connect(b, testutil.StartNATS(b))
	js, _ := jetstream.New(nc)
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 10_000
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if err := st.Create(ctx, pod(fmt.Sprintf("p-%05d", i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var backupTime, restoreTime time.Duration
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		start := time.Now()
		if _, err := backup.Write(ctx, nc, &buf); err != nil {
			b.Fatal(err)
		}
		backupTime += time.Since(start)
		size = buf.Len()
		dst := testutil.Connect(b, testutil.StartNATS(b))
		start = time.Now()
		if _, err := backup.Restore(ctx, dst, &buf, backup.Options{}); err != nil {
			b.Fatal(err)
		}
		restoreTime += time.Since(start)
	}
	b.ReportMetric(float64(backupTime.Milliseconds())/float64(b.N), "backup-ms")
	b.ReportMetric(float64(restoreTime.Milliseconds())/float64(b.N), "restore-ms")
	b.ReportMetric(float64(size), "bytes")
}
