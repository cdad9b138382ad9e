package apiserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
)

// wasmBytes returns n bytes that start with the wasm magic.
func wasmBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	copy(b, "\x00asm\x01\x00\x00\x00")
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// modulePod binds a wasm pod whose container runs kyb://<module> to node.
func (e *env) modulePod(t *testing.T, name, module, nodeName string) {
	t.Helper()
	e.apply(t, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  runtimeClassName: wasm\n  containers:\n  - name: app\n    image: kyb://%s@%s\n", name, module, digestOf([]byte("x"))))
	e.bind(t, "default", name, nodeName)
}

// A 3 MiB module pushed in chunks round-trips with its digest: through
// modules.get and list, in the object store, and to a node that runs it,
// whose download the server cuts into several streams.
func TestModulePushRoundTrip(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), apiserver.Config{StreamMaxBytes: 1 << 20, StreamHeartbeat: 20 * time.Millisecond})
	data := wasmBytes(t, 3<<20+12345)
	info, err := e.c.PushModule(e.ctx, "big", data)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if info.Name != "big" || info.Size != int64(len(data)) || info.Digest != digestOf(data) {
		t.Fatalf("pushed %+v, want big %d %s", info, len(data), digestOf(data))
	}
	if got, err := e.c.GetModule(e.ctx, "big"); err != nil || *got != *info {
		t.Fatalf("get: %+v %v, want %+v", got, err, info)
	}
	if list, err := e.c.ListModules(e.ctx); err != nil || len(list) != 1 || list[0] != *info {
		t.Fatalf("list: %+v %v", list, err)
	}
	obs, err := e.js.ObjectStore(e.ctx, api.ModulesBucket)
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := obs.GetBytes(e.ctx, "big"); err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("object store holds %d bytes (%v), want the %d pushed", len(stored), err, len(data))
	}
	// A second push replaces the module.
	small := wasmBytes(t, 100)
	if info, err := e.c.PushModule(e.ctx, "big", small); err != nil || info.Digest != digestOf(small) {
		t.Fatalf("second push: %+v %v", info, err)
	}
	if _, err := e.c.PushModule(e.ctx, "big", data); err != nil {
		t.Fatal(err)
	}

	requests := countRequests(t, e, api.NodeSubject("n1", api.NodeVerbModule))
	e.modulePod(t, "runner", "big", "n1")
	mods := node.NewModules(testutil.Connect(t, e.ns), "n1", 10*time.Second)
	testutil.Eventually(t, 5*time.Second, func() error { // the cache sees the binding
		_, err := mods.Info(e.ctx, "big")
		return err
	})
	mi, err := mods.Info(e.ctx, "big")
	if err != nil || mi.Digest != info.Digest || mi.Size != int64(len(data)) {
		t.Fatalf("node info %+v %v", mi, err)
	}
	rc, mi2, err := mods.Open(e.ctx, "big")
	if err != nil || mi2 != mi {
		t.Fatalf("open: %+v %v", mi2, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("node read %d bytes (%v), want the %d pushed", len(got), err, len(data))
	}
	if n := requests.Load(); n < 3 {
		t.Errorf("%d module requests for a 3 MiB module with 1 MiB windows: no resume", n)
	}
}

// A node may read only the modules its pods reference: 403 otherwise, and
// a referenced module that is not there wraps fs.ErrNotExist.
func TestNodeModuleAccess(t *testing.T) {
	e := newEnv(t)
	if _, err := e.c.PushModule(e.ctx, "secret", wasmBytes(t, 1000)); err != nil {
		t.Fatal(err)
	}
	e.modulePod(t, "mine", "secret", "n1")
	e.modulePod(t, "ghost", "missing", "n2")
	n1 := node.NewModules(testutil.Connect(t, e.ns), "n1", 0)
	testutil.Eventually(t, 5*time.Second, func() error { _, err := n1.Info(e.ctx, "secret"); return err })

	n2 := node.NewModules(testutil.Connect(t, e.ns), "n2", 0)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"info", func() error { _, err := n2.Info(e.ctx, "secret"); return err }()},
		{"open", func() error { _, _, err := n2.Open(e.ctx, "secret"); return err }()},
		{"stream", func() error {
			// Straight to the streamed verb, as a node skipping Info would.
			m, err := e.nc.Request(api.NodeSubject("n2", api.NodeVerbModule), must(json.Marshal(api.ModuleRequest{Name: "secret"})), 5*time.Second)
			if err != nil {
				return err
			}
			return client.ReplyError(m)
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := (*api.Status)(nil); !errors.As(tc.err, &st) || st.Code != 403 || !strings.Contains(st.Message, `node "n2" may not read module "secret"`) {
				t.Fatalf("error %v, want 403 naming node and module", tc.err)
			}
		})
	}
	testutil.Eventually(t, 5*time.Second, func() error { // once the cache sees ghost bound
		if _, err := n2.Info(e.ctx, "missing"); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("a referenced module that is not there: %v, want fs.ErrNotExist", err)
		}
		return nil
	})
	if _, _, err := n2.Open(e.ctx, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a module that is not there: %v, want fs.ErrNotExist", err)
	}
}

// openUpload opens an upload of data by hand, as a client would.
func openUpload(t *testing.T, e *env, name string, size int64, digest string) api.ModuleUpload {
	t.Helper()
	b, err := e.c.Request(e.ctx, api.SubjectModulesPush, must(json.Marshal(api.ModulePushRequest{Name: name, Size: size, Digest: digest})))
	if err != nil {
		t.Fatalf("open upload: %v", err)
	}
	var up api.ModuleUpload
	if err := json.Unmarshal(b, &up); err != nil {
		t.Fatal(err)
	}
	return up
}

func sendChunk(e *env, up api.ModuleUpload, off int, chunk []byte) error {
	m, err := e.nc.RequestMsg(&nats.Msg{Subject: up.Subject, Data: chunk, Header: nats.Header{api.StreamSeqHeader: []string{fmt.Sprint(off)}}}, 5*time.Second)
	if err != nil {
		return err
	}
	return client.ReplyError(m)
}

// moduleStoreEmpty fails unless the module store holds no object and no
// chunk of one.
func moduleStoreEmpty(e *env) error {
	obs, err := e.js.ObjectStore(e.ctx, api.ModulesBucket)
	if err != nil {
		return err
	}
	if l, err := obs.List(e.ctx); !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return fmt.Errorf("modules %d (%v), want none", len(l), err)
	}
	si, err := obs.Status(e.ctx)
	if err != nil {
		return err
	}
	if b := si.(*jetstream.ObjectBucketStatus).StreamInfo().State.Msgs; b != 0 {
		return fmt.Errorf("module store stream holds %d messages, want 0", b)
	}
	return nil
}

// An abandoned upload times out and leaves nothing; so does one whose
// bytes do not match the declared digest; bad pushes are refused up front.
func TestModuleUploadFailuresLeaveNothing(t *testing.T) {
	e := newEnvOn(t, testutil.StartNATS(t), apiserver.Config{UploadIdleTimeout: 200 * time.Millisecond})
	data := wasmBytes(t, 1<<20)
	up := openUpload(t, e, "left", int64(len(data)), digestOf(data))
	if err := sendChunk(e, up, 0, data[:up.ChunkSize]); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if err := sendChunk(e, up, up.ChunkSize, data[up.ChunkSize:2*up.ChunkSize]); !api.IsNotFound(err) {
			return fmt.Errorf("a chunk after the idle timeout: %v, want 404", err)
		}
		return nil
	})
	testutil.Eventually(t, 5*time.Second, func() error { return moduleStoreEmpty(e) })

	// Every byte sent, but not the declared ones: 422 and nothing stored.
	other := wasmBytes(t, len(data))
	up = openUpload(t, e, "liar", int64(len(data)), digestOf(data))
	var last error
	for off := 0; off < len(other); off += up.ChunkSize {
		last = sendChunk(e, up, off, other[off:off+up.ChunkSize])
	}
	if !api.IsInvalid(last) || !strings.Contains(last.Error(), "nothing stored") {
		t.Fatalf("last chunk of a wrong digest: %v, want 422", last)
	}
	testutil.Eventually(t, 5*time.Second, func() error { return moduleStoreEmpty(e) })

	// Out of order, from someone else, and refused pushes.
	up = openUpload(t, e, "gap", int64(len(data)), digestOf(data))
	if err := sendChunk(e, up, up.ChunkSize, data[:up.ChunkSize]); !api.IsConflict(err) {
		t.Fatalf("chunk out of order: %v, want 409", err)
	}
	m, err := e.nc.RequestMsg(&nats.Msg{Subject: up.Subject, Data: data[:up.ChunkSize], Header: nats.Header{
		api.StreamSeqHeader: []string{"0"},
		"Nats-Request-Info": []string{`{"acc":"USERS","user":"mallory"}`}, // as a service import would add it
	}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ReplyError(m); api.ReasonOf(err) != api.ReasonForbidden || !strings.Contains(err.Error(), "USERS/mallory") {
		t.Fatalf("a chunk from another user: %v, want 403 naming them", err)
	}
	for _, tc := range []struct {
		name string
		req  api.ModulePushRequest
	}{
		{"4 KB name", api.ModulePushRequest{Name: strings.Repeat("a", 4100), Size: 100, Digest: digestOf(data)}},
		{"bad name", api.ModulePushRequest{Name: "../x", Size: 100, Digest: digestOf(data)}},
		{"too large", api.ModulePushRequest{Name: "x", Size: 1 << 40, Digest: digestOf(data)}},
		{"bad digest", api.ModulePushRequest{Name: "x", Size: 100, Digest: "md5:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.Request(e.ctx, api.SubjectModulesPush, must(json.Marshal(tc.req)))
			if st := (*api.Status)(nil); !errors.As(err, &st) || st.Code != 400 {
				t.Fatalf("error %v, want 400", err)
			}
		})
	}
	if _, err := e.c.PushModule(e.ctx, "notwasm", []byte("#!/bin/sh\necho hi\n")); !api.IsInvalid(err) {
		t.Fatalf("push of a non-wasm file: %v, want 422", err)
	}
	if _, err := e.c.GetModule(e.ctx, "nope"); !api.IsNotFound(err) {
		t.Fatalf("get of a missing module: %v, want 404", err)
	}
}

// A node whose credentials allow only its own kyb.node.<node>.> subjects
// and its inbox (no $JS.API.>, $O.>) fetches its pods' modules.
func TestNodeFetchesModuleWithNodePermissionsOnly(t *testing.T) {
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		MaxPayload: 8 << 20,
		Users: []*server.User{
			{Username: "control", Password: "c"},
			{Username: "n1", Password: "n", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"kyb.node.n1.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		},
		NoAuthUser: "control", // the test's own connections
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	e := newEnvOn(t, &testutil.Server{Server: ns, Dir: opts.StoreDir}, apiserver.Config{})
	data := wasmBytes(t, 700<<10)
	if _, err := e.c.PushModule(e.ctx, "prog", data); err != nil {
		t.Fatal(err)
	}
	e.modulePod(t, "runner", "prog", "n1")
	nodeConn := testutil.Connect(t, &testutil.Server{Server: ns}, nats.UserInfo("n1", "n"))
	// What the node may not do: read the module store itself.
	js, err := jetstream.New(nodeConn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := js.ObjectStore(ctx, api.ModulesBucket); err == nil {
		t.Fatal("the node opened the module store: the permissions do not hold")
	}
	mods := node.NewModules(nodeConn, "n1", 5*time.Second)
	testutil.Eventually(t, 5*time.Second, func() error { _, err := mods.Info(e.ctx, "prog"); return err })
	rc, info, err := mods.Open(e.ctx, "prog")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) || info.Digest != digestOf(data) {
		t.Fatalf("node read %d bytes, digest %s (%v); want %d, %s", len(got), info.Digest, err, len(data), digestOf(data))
	}
}
