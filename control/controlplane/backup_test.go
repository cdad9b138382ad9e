package controlplane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

// copyDir copies the files of src (one level: pki holds no directories)
// into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			copyDir(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A backup taken through the API (cluster-admin only) and restored into a
// fresh data directory holding the same pki: every object at the same
// resourceVersion, the pushed module, and the credentials issued before
// the backup (the admin's and a user's) still work; a watch from a
// resourceVersion of before the backup goes on; a restore over a store
// that holds data is refused without force.
func TestBackupRestoreIntoAFreshServer(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(testWriter(t), nil))
	srcDir := t.TempDir()
	// Small stream windows, so the download is resumed several times.
	src, err := controlplane.Start(ctx, controlplane.Config{DataDir: srcDir, Listen: "127.0.0.1:0", TLS: "on", Sync: "1s",
		APIServer: apiserver.Config{StreamMaxBytes: 64 << 10}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Shutdown()
	adminCred := adminCreds(t, src)
	admin, err := connectAs(t, src, adminCred)
	if err != nil {
		t.Fatal(err)
	}
	ac := client.New(admin)
	if _, err := ac.Apply(ctx, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: viewer-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: viewer}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {containers: [{name: c, image: busybox}]}
`)); err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 300_000) // incompressible: the backup spans several windows
	_, _ = rand.Read(noise)
	module := append([]byte("\x00asm\x01\x00\x00\x00"), noise...)
	if _, err := ac.PushModule(ctx, "hello", module); err != nil {
		t.Fatal(err)
	}
	userPath, err := client.CreateUser(ctx, ac, "viewer", src.ClientURL(), filepath.Join(t.TempDir(), "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	objects := [][3]string{{"Namespace", "", "team"}, {"Pod", "default", "web"}, {"ClusterRoleBinding", "", "viewer-view"}}
	before := map[string]string{}
	for _, k := range objects {
		o, err := ac.Get(ctx, k[0], k[1], k[2])
		if err != nil {
			t.Fatal(err)
		}
		before[k[0]] = o.GetObjectMeta().ResourceVersion
	}

	// Only cluster-admin may back up: a viewer's request is a 403.
	viewerCfg, err := client.LoadConfig(userPath)
	if err != nil {
		t.Fatal(err)
	}
	viewerOpts, err := viewerCfg.Options()
	if err != nil {
		t.Fatal(err)
	}
	vnc, err := nats.Connect(src.ClientURL(), viewerOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer vnc.Close()
	var st *api.Status
	if _, err := client.New(vnc).Backup(ctx, &bytes.Buffer{}); !errors.As(err, &st) || st.Code != 403 {
		t.Fatalf("viewer's backup: %v; want 403", err)
	}

	// Hostile resume points: refused with a clear 4xx, nothing sent.
	for _, tc := range []struct {
		resume string
		code   int
	}{{"garbage", 400}, {"nosuch:0", 410}, {strings.Repeat("x", 4096) + ":1", 400}, {"ab/c:1", 400}, {":5", 400}, {"x:-1", 400}} {
		body, _ := json.Marshal(api.BackupRequest{Resume: tc.resume})
		err := client.Stream(ctx, admin, 0, api.SubjectBackup, body, nil, func(*nats.Msg) error {
			return errors.New("data sent for a bad resume point")
		})
		if !errors.As(err, &st) || st.Code != tc.code || len(st.Message) > 300 {
			t.Fatalf("resume %.20q: %v; want a short %d", tc.resume, err, tc.code)
		}
	}

	file := filepath.Join(t.TempDir(), "cluster.kyb")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ac.Backup(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if n < 4*(64<<10) {
		t.Fatalf("backup of %d bytes: want one spanning several 64 KiB windows", n)
	}
	t.Logf("backup: %d bytes", n)
	src.Shutdown()

	// A fresh data directory with the same keys.
	dstDir := t.TempDir()
	copyDir(t, filepath.Join(srcDir, "pki"), filepath.Join(dstDir, "pki"))
	dst, err := controlplane.Start(ctx, controlplane.Config{DataDir: dstDir, Listen: "127.0.0.1:0", TLS: "on", Sync: "1s", Restore: file}, log)
	if err != nil {
		t.Fatalf("start with --restore: %v", err)
	}
	defer dst.Shutdown()
	admin2, err := connectAs(t, dst, adminCred)
	if err != nil {
		t.Fatalf("the admin credentials of before the backup: %v", err)
	}
	ac2 := client.New(admin2)
	for _, k := range objects {
		o, err := ac2.Get(ctx, k[0], k[1], k[2])
		if err != nil || o.GetObjectMeta().ResourceVersion != before[k[0]] {
			t.Fatalf("restored %s %s: %v, %+v; want resourceVersion %s", k[0], k[2], err, o, before[k[0]])
		}
	}
	if info, err := ac2.GetModule(ctx, "hello"); err != nil || info.Size != int64(len(module)) {
		t.Fatalf("restored module: %+v, %v", info, err)
	}
	vnc2, err := nats.Connect(dst.ClientURL(), viewerOpts...)
	if err != nil {
		t.Fatalf("the viewer's credentials of before the backup: %v", err)
	}
	defer vnc2.Close()
	if _, err := client.New(vnc2).Get(ctx, "Pod", "default", "web"); err != nil {
		t.Fatalf("viewer reads after the restore: %v", err)
	}
	// A watch from the pod's resourceVersion of before the backup sees the
	// next change.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	w, err := ac2.WatchFrom(wctx, api.WatchRequest{Kind: "Pod", Namespace: "default", ResourceVersion: before["Pod"]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac2.Apply(ctx, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: after}\nspec: {containers: [{name: c, image: busybox}]}\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			found = ev.Object != nil && ev.Object.GetObjectMeta().Name == "after"
		case <-deadline:
			t.Fatal("a watch from a resourceVersion of before the backup missed a later pod")
		}
	}
	dst.Shutdown()

	// Restoring over a store that holds data is refused, and changes nothing.
	_, err = controlplane.Start(ctx, controlplane.Config{DataDir: dstDir, Listen: "127.0.0.1:0", TLS: "on", Sync: "1s", Restore: file}, log)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over data: %v; want a refusal", err)
	}
}
