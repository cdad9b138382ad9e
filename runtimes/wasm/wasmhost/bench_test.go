package wasmhost_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// benchRuntime is the runtime of one side of a benchmark: in this process,
// or a client of a host process; rss reads the memory of the process that
// runs the modules.
func benchRuntime(b *testing.B, mode string) (rt runtimes.Runtime, rss func() int64) {
	b.Helper()
	dir := b.TempDir()
	switch mode {
	case "inproc":
		r, err := wasm.New(wasm.Config{StateDir: filepath.Join(dir, "wasm"), CacheDir: cacheDir, ModuleDirs: []string{os.TempDir()},
			HTTP: wasm.HTTPConfig{DefaultHostIP: "127.0.0.1"}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		return r, func() int64 { return vmRSS(os.Getpid()) }
	default:
		c := open(b, dir)
		return c, func() int64 { return vmRSS(c.HostPID()) }
	}
}

// vmRSS is a process's resident memory in bytes.
func vmRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func percentiles(b *testing.B, d []time.Duration, unit string) {
	slices.Sort(d)
	if len(d) == 0 {
		return
	}
	p := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-"+unit)
	b.ReportMetric(p(0.99), "p99-"+unit)
}

// BenchmarkPodStart: the time from CreateSandbox to a started module (a
// Go WASI program that sleeps), in process and through a host process;
// each iteration is one more running pod. It also reports the resident
// memory the pods add to the process that runs them.
func BenchmarkPodStart(b *testing.B) {
	prog := "file://" + testProg(b)
	for _, mode := range []string{"inproc", "host"} {
		b.Run(mode, func(b *testing.B) {
			rt, rss := benchRuntime(b, mode)
			ctx := ctxT(b)
			if _, err := rt.EnsureImage(ctx, prog, runtimes.PullIfNotPresent, nil); err != nil {
				b.Fatal(err)
			}
			logDir := b.TempDir()
			before := rss()
			var took []time.Duration
			var sbs []string
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: fmt.Sprintf("p%d", i), UID: strconv.Itoa(i)})
				if err != nil {
					b.Fatal(err)
				}
				id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: prog, Args: []string{"sleep", "forever"}, LogPath: filepath.Join(logDir, strconv.Itoa(i))})
				if err != nil {
					b.Fatal(err)
				}
				if err := rt.StartContainer(ctx, id); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
				sbs = append(sbs, sb.ID)
			}
			b.StopTimer()
			time.Sleep(200 * time.Millisecond) // let the modules reach their sleep
			after := rss()
			percentiles(b, took, "ms")
			b.ReportMetric(float64(before)/(1<<20), "rss-before-MiB")
			b.ReportMetric(float64(after)/(1<<20), "rss-MiB")
			b.ReportMetric(float64(after-before)/float64(b.N)/(1<<10), "rss-KiB/pod")
			for _, id := range sbs {
				if err := rt.RemoveSandbox(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWAGI: one GET at a time to a WAGI hostPort (a Go net/http/cgi
// module, one instance per request), served in process and by a host
// process.
func BenchmarkWAGI(b *testing.B) {
	cgi := "file://" + cgiModule(b)
	for _, mode := range []string{"inproc", "host"} {
		b.Run(mode, func(b *testing.B) {
			rt, _ := benchRuntime(b, mode)
			ctx := ctxT(b)
			port := freePort(b)
			pm := runtimes.PortMapping{ContainerPort: 8080, HostPort: port, Protocol: "TCP"}
			sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "web", Ports: []runtimes.PortMapping{pm}})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.RemoveSandbox(ctx, sb.ID)
			id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "web", Image: cgi, Ports: []runtimes.PortMapping{pm}, LogPath: filepath.Join(b.TempDir(), "log")})
			if err != nil {
				b.Fatal(err)
			}
			if err := rt.StartContainer(ctx, id); err != nil {
				b.Fatal(err)
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/status/200", port)
			hc := &http.Client{Timeout: 30 * time.Second}
			get := func() {
				resp, err := hc.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET: %d", resp.StatusCode)
				}
			}
			get() // warm
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				get()
				took = append(took, time.Since(t0))
			}
			b.StopTimer()
			percentiles(b, took, "ms")
		})
	}
}
