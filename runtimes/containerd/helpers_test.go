package containerd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Test environment: every test of this package talks to the containerd at
// $KYB_CONTAINERD_ADDRESS (else /run/containerd/containerd.sock) in the
// namespace testNamespace (one per test process, so that runs may overlap),
// with its own state dir, and a bridge, pod CIDR and IP allocation dir
// shared by all runs. Without a daemon the tests skip, unless CI=true, where
// they fail.
var (
	testNamespace = fmt.Sprintf("kyb-test-%d", os.Getpid())
	testIPAMDir   = filepath.Join(os.TempDir(), "kyb-containerd-ipam-test")
	testDirPrefix = "kyb-containerd-test-"
)

const (
	testBridge  = "kybtest0"
	testNetwork = "kybtest"
	testCIDR    = "10.123.0.0/24"
)

type testEnv struct {
	addr     string
	dir      string
	stateDir string
	appBin   string
	// logDriver is a small program calling LogDriverMain (a -race test
	// binary would be slow to start for every container).
	logDriver string
	registry  *httptest.Server
	// image is the test image in the in-process registry, entrypoint
	// ["/app"], cmd ["sleep"].
	image string
	// appImg is the same image as a go-containerregistry value, for archives.
	appImg v1.Image
}

var (
	daemonOnce sync.Once
	daemonErr  error
	envOnce    sync.Once
	envErr     error
	env        *testEnv
)

func containerdAddress() string {
	if a := os.Getenv("KYB_CONTAINERD_ADDRESS"); a != "" {
		return a
	}
	return DefaultAddress
}

// daemonAnswers reports why containerd at addr cannot be used, or nil.
func daemonAnswers(addr string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the containerd tests need root")
	}
	c, err := cclient.New(addr, cclient.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

// requireEnv returns the shared test environment, skipping (or, with
// CI=true, failing) the test when no containerd answers.
func requireEnv(t testing.TB) *testEnv {
	t.Helper()
	addr := containerdAddress()
	daemonOnce.Do(func() { daemonErr = daemonAnswers(addr) })
	if err := daemonErr; err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("containerd at %s does not answer (CI=true, so this fails; run .ci/containerd.sh): %v", addr, err)
		}
		t.Skipf("containerd at %s does not answer (set KYB_CONTAINERD_ADDRESS, e.g. by `source .ci/containerd.sh`): %v", addr, err)
	}
	envOnce.Do(func() { env, envErr = setupEnv(addr) })
	if envErr != nil {
		t.Fatalf("set up test environment: %v", envErr)
	}
	return env
}

func setupEnv(addr string) (*testEnv, error) {
	e := &testEnv{addr: addr}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", testDirPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	e.dir = dir
	e.stateDir = filepath.Join(dir, "state")
	e.appBin = filepath.Join(dir, "app")
	e.logDriver = filepath.Join(dir, "logdriver")
	for bin, pkg := range map[string]string{e.appBin: "./testdata/app", e.logDriver: "./testdata/logdriver"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	e.appImg, err = buildImage(e.appBin, []string{"/app"}, []string{"sleep"})
	if err != nil {
		return nil, err
	}
	removeDeadRuns(addr)
	e.registry = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(e.registry.URL, "http://")
	e.image = host + "/kyb/app:v1"
	if err := pushImage(e.image, e.appImg); err != nil {
		return nil, err
	}
	return e, nil
}

func pushImage(ref string, img v1.Image) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// buildImage packs the static binary at bin as /app in a one-layer image.
func buildImage(bin string, entrypoint, cmd []string) (v1.Image, error) {
	return buildImageAs(bin, "app", entrypoint, cmd)
}

// buildImageAs packs the static binary at bin as /<file> in a one-layer image.
func buildImageAs(bin, file string, entrypoint, cmd []string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"work/", "tmp/", "etc/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: file, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compress once: go-containerregistry would gzip an uncompressed layer
	// again each time it is read.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layerBytes := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Config.Entrypoint = entrypoint
	cf.Config.Cmd = cmd
	cf.Config.Env = []string{"PATH=/", "FROM_IMAGE=image"}
	cf.Config.WorkingDir = "/work"
	return mutate.ConfigFile(img, cf)
}

func testConfig(e *testEnv) Config {
	return Config{
		Address:     e.addr,
		Namespace:   testNamespace,
		StateDir:    e.stateDir,
		NetworkName: testNetwork,
		BridgeName:  testBridge,
		PodCIDR:     testCIDR,
		IPAMDir:     testIPAMDir,
		LogDriver:   e.logDriver,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("KYB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newTestRuntime returns a Runtime on the test environment with the test
// image present.
func newTestRuntime(t testing.TB) (*Runtime, *testEnv) {
	t.Helper()
	e := requireEnv(t)
	r, err := New(context.Background(), testConfig(e), testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.EnsureImage(context.Background(), e.image, runtimes.PullIfNotPresent, nil); err != nil {
		t.Fatalf("EnsureImage %s: %v", e.image, err)
	}
	return r, e
}

// newSandbox creates a sandbox and removes it when the test ends.
func newSandbox(t testing.TB, r *Runtime, name string, ports ...runtimes.PortMapping) *runtimes.Sandbox {
	t.Helper()
	sb, err := r.CreateSandbox(context.Background(), &runtimes.SandboxConfig{
		Namespace: "test", Name: name, UID: "uid-" + name, Ports: ports,
		Labels: map[string]string{"app": name},
	})
	if err != nil {
		t.Fatalf("CreateSandbox %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := r.RemoveSandbox(context.Background(), sb.ID); err != nil {
			t.Errorf("RemoveSandbox %s: %v", sb.ID, err)
		}
	})
	return sb
}

// run creates and starts a container of the test image.
func run(t testing.TB, r *Runtime, sb *runtimes.Sandbox, cfg *runtimes.ContainerConfig) string {
	t.Helper()
	ctx := context.Background()
	if cfg.Image == "" {
		cfg.Image = env.image
	}
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(t.TempDir(), cfg.Name+".log")
	}
	id, err := r.CreateContainer(ctx, sb.ID, cfg)
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.Name, err)
	}
	if err := r.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer %s: %v", cfg.Name, err)
	}
	return id
}

// waitExit waits up to timeout for the container to exit.
func waitExit(t testing.TB, r *Runtime, id string, timeout time.Duration) runtimes.ExitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch, err := r.WaitContainer(ctx, id)
	if err != nil {
		t.Fatalf("WaitContainer %s: %v", id, err)
	}
	res := <-ch
	if res.Err != nil {
		t.Fatalf("WaitContainer %s: %v", id, res.Err)
	}
	return res
}

func freePort(t testing.TB) int32 {
	t.Helper()
	p, err := freeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freeTCPPort() (int32, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port), nil
}

// leakCounts counts what sandboxes and containers hold on the node.
type leakCounts struct {
	Containers, Snapshots, NetNS, Veths, IPs, Sandboxes int
	// NATRules counts iptables nat rules the CNI plugins tagged with the
	// test network's name (masquerade and host port rules).
	NATRules int
}

func countLeaks(t testing.TB, r *Runtime) leakCounts {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), testNamespace)
	var lc leakCounts
	cs, err := r.client.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lc.Containers = len(cs)
	snap, err := r.snapshotterName(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = r.client.SnapshotService(snap).Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			lc.Snapshots++ // active snapshots are containers' rootfs
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(r.cfg.StateDir, "netns"))
	lc.NetNS = len(ents)
	ents, _ = os.ReadDir(filepath.Join(r.cfg.StateDir, "sandboxes"))
	lc.Sandboxes = len(ents)
	out, err := exec.Command("ip", "-o", "link", "show", "master", testBridge).Output()
	if err == nil {
		lc.Veths = strings.Count(string(out), "\n")
	}
	if out, err := exec.Command("iptables-save", "-t", "nat").Output(); err == nil {
		lc.NATRules = strings.Count(string(out), `name: \"`+testNetwork+`\"`)
	}
	ents, _ = os.ReadDir(filepath.Join(r.net.ipamDir(), testNetwork))
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			lc.IPs++
		}
	}
	return lc
}

func writeArchive(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, ref, img)
}

// removeLeftovers deletes the containers and images an earlier, aborted
// test run left in the test namespace.
func removeLeftovers(addr, ns string) error {
	c, err := cclient.New(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	cs, err := c.Containers(ctx)
	if err != nil {
		return err
	}
	for _, ct := range cs {
		if task, err := ct.Task(ctx, nil); err == nil {
			task.Delete(ctx, cclient.WithProcessKill)
		}
		if err := ct.Delete(ctx, cclient.WithSnapshotCleanup); err != nil {
			return fmt.Errorf("remove leftover container %s: %w", ct.ID(), err)
		}
	}
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		return err
	}
	for _, i := range imgs {
		c.ImageService().Delete(ctx, i.Name, images.SynchronousDelete())
	}
	c.NamespaceService().Delete(ctx, ns)
	return nil
}

// removeDeadRuns removes what test runs whose process has died left behind:
// their sandboxes (network namespaces, IPs, NAT rules), containers, images,
// containerd namespace and state dir.
func removeDeadRuns(addr string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), testDirPrefix+"*"))
	for _, d := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), testDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // not ours, or still running
		}
		ns := fmt.Sprintf("kyb-test-%d", pid)
		r, err := New(context.Background(), Config{
			Address: addr, Namespace: ns, StateDir: filepath.Join(d, "state"),
			NetworkName: testNetwork, BridgeName: testBridge, PodCIDR: testCIDR,
			IPAMDir: testIPAMDir, LogDriver: "file",
		}, nil)
		if err != nil {
			continue
		}
		sbs, _ := r.ListSandboxes(context.Background())
		for _, sb := range sbs {
			r.RemoveSandbox(context.Background(), sb.ID)
		}
		r.Close()
		// Namespaces of sandboxes whose creation the process died in.
		nss, _ := filepath.Glob(filepath.Join(d, "state", "netns", "*"))
		for _, p := range nss {
			netns.LoadNetNS(p).Remove()
		}
		removeLeftovers(addr, ns)
		os.RemoveAll(d)
	}
}
