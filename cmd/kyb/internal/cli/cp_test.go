package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/containerd/containerdtest"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

func TestParseCpSpec(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want string // "" for local
		err  string
	}{
		{"web:/tmp/x", "{ web /tmp/x}", ""},
		{"prod/web:/tmp/x", "{prod web /tmp/x}", ""},
		{"./local", "", ""},
		{"/abs/local", "", ""},
		{"local", "", ""},
		{"web:relative", "", "must be absolute"},
	} {
		r, err := parseCpSpec(tc.arg)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v; want %q", tc.arg, err, tc.err)
			}
		case tc.want == "" && r != nil, err != nil, tc.want != "" && (r == nil || fmt.Sprint(*r) != tc.want):
			t.Errorf("%s: %+v %v; want %s", tc.arg, r, err, tc.want)
		}
	}
}

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = 2
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("hi"))
		}
	}
	tw.Close()
	return b.Bytes()
}

// A hostile container's archive cannot write outside the destination.
func TestExtractTarRefusesEscapes(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		want    string
	}{
		{"dot-dot", []tar.Header{reg("d/../../evil")}, "refusing"},
		{"absolute", []tar.Header{reg("/etc/evil")}, "refusing"},
		{"another root", []tar.Header{reg("other/x")}, "not beneath"},
		{"prefix look-alike", []tar.Header{reg("dd/x")}, "not beneath"},
		{"empty", nil, "nothing copied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := extractTar(bytes.NewReader(tarOf(t, tc.entries...)), "d", filepath.Join(dir, "out"), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v; want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil")); err == nil {
				t.Error("wrote outside")
			}
		})
	}
	dir := t.TempDir()
	var warn bytes.Buffer
	err := extractTar(bytes.NewReader(tarOf(t, tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("d/f"),
		tar.Header{Name: "d/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})), "d", filepath.Join(dir, "out"), &warn)
	b, _ := os.ReadFile(filepath.Join(dir, "out", "f"))
	if err != nil || string(b) != "hi" || !strings.Contains(warn.String(), `skipping "d/link"`) {
		t.Errorf("extract: %v, f=%q, warn %q", err, b, warn.String())
	}
	if _, err := os.Lstat(filepath.Join(dir, "out", "link")); err == nil {
		t.Error("a symlink was made")
	}
}

// kyb exec in a container (the shell test image) through the whole path:
// sh -c 'echo $HOSTNAME', stdin piped with -i, the exit code; kyb cp of a
// directory there and back.
func TestContainerExecAndCp(t *testing.T) {
	rt := containerdtest.Runtime(t, containerd.Config{
		Namespace: containerdtest.Namespace("kyb-cli-exec-test"), StateDir: t.TempDir(), IPAMDir: t.TempDir(),
		NetworkName: "kybcliexec", BridgeName: "kybcliexec0", PodCIDR: "10.129.0.0/24", LogDriver: "file",
	}, nil)
	url := startCluster(t)
	nc, err := nats.Connect(controlURL)
	if err != nil {
		t.Fatal(err)
	}
	a, err := node.New(node.Config{Name: "n1", DataDir: t.TempDir(), PodCIDR: "10.129.0.0/24", HeartbeatInterval: 200 * time.Millisecond, StatusFlushInterval: 20 * time.Millisecond},
		nc, map[string]runtimes.Runtime{api.RuntimeContainerd: rt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		nc.Close()
	})
	<-a.Ready()
	applyText(t, url, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: sh}
spec:
  nodeName: n1
  hostname: shell-host
  containers: [{name: app, image: %q, imagePullPolicy: IfNotPresent, command: [/bin/sh, -c, sleep 3600]}]
`, runtimetest.ShellImage(t)))
	waitPodRunning(t, url, "sh")

	out, errOut, err := kybOut(url, "exec", "sh", "--", "sh", "-c", "echo $HOSTNAME")
	if err != nil || out != "shell-host\n" {
		t.Errorf("exec echo $HOSTNAME: %q %q %v", out, errOut, err)
	}
	var o, e bytes.Buffer
	err = Run(context.Background(), []string{"--server", url, "exec", "-i", "sh", "--", "cat"}, Streams{In: strings.NewReader("piped\n"), Out: &o, Err: &e})
	if err != nil || o.String() != "piped\n" {
		t.Errorf("exec -i cat: %q %q %v", o.String(), e.String(), err)
	}
	_, _, err = kybOut(url, "exec", "sh", "--", "sh", "-c", "exit 42")
	if ee, ok := err.(ExitError); !ok || ee.Code != 42 {
		t.Errorf("exit 42: %v", err)
	}

	src := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), bytes.Repeat([]byte("b"), 300<<10), 0o644)
	if _, errOut, err := kybOut(url, "cp", src, "sh:/tmp/copied"); err != nil {
		t.Fatalf("cp to the pod: %v %s", err, errOut)
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, errOut, err := kybOut(url, "cp", "default/sh:/tmp/copied", back); err != nil {
		t.Fatalf("cp from the pod: %v %s", err, errOut)
	}
	a1, _ := os.ReadFile(filepath.Join(back, "a.txt"))
	b1, _ := os.ReadFile(filepath.Join(back, "sub", "b.txt"))
	if string(a1) != "alpha" || len(b1) != 300<<10 {
		t.Errorf("round trip: a.txt %q, b.txt %d bytes", a1, len(b1))
	}
	if _, _, err := kybOut(url, "cp", "sh:/no/such", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("cp of a missing path succeeded")
	}
}
