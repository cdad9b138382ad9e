package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// KYB_NODE_BENCH_CPUPROFILE=<file> writes the agent child's CPU profile.
//
// The benchmarks run the agent in a child process (this test binary,
// re-executed), so that its RSS is the agent's alone and not the NATS
// server's or the fake control plane's.
const (
	envChildURL = "KYB_NODE_BENCH_URL"
	envChildDir = "KYB_NODE_BENCH_DIR"
	memSubject  = "bench.node.mem"
	childNode   = "bench-node"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildURL); url != "" {
		os.Exit(runChildAgent(url, os.Getenv(envChildDir)))
	}
	os.Exit(m.Run())
}

// memReport is the agent process's memory as the child reports it.
type memReport struct {
	HeapAlloc  uint64        `json:"heapAlloc"`
	HeapInuse  uint64        `json:"heapInuse"`
	Sys        uint64        `json:"sys"`
	RSS        int64         `json:"rss"`
	Goroutines int           `json:"goroutines"`
	CPU        time.Duration `json:"cpu"` // user+system time so far
}

func readMem() memReport {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := memReport{HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				f := strings.Fields(v)
				n, _ := strconv.ParseInt(f[0], 10, 64)
				r.RSS = n * 1024
			}
		}
	}
	return r
}

func runChildAgent(url, dir string) int {
	if path := os.Getenv("KYB_NODE_BENCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	_, _ = nc.Subscribe(memSubject, func(m *nats.Msg) {
		b, _ := json.Marshal(readMem())
		_ = m.Respond(b)
	})
	rt, err := fake.New(fake.Config{Name: api.RuntimeContainerd}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a, err := New(Config{Name: childNode, DataDir: dir}, nc, map[string]runtimes.Runtime{api.RuntimeContainerd: rt}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The parent ends the child by closing its stdin.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startChild starts the agent child process against srv.
func startChild(b *testing.B, srv *testutil.Server) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildURL+"="+srv.ClientURL(), envChildDir+"="+b.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

func childMem(b *testing.B, nc *nats.Conn) memReport {
	m, err := nc.Request(memSubject, nil, 5*time.Second)
	if err != nil {
		b.Fatalf("ask the agent for its memory: %v", err)
	}
	var r memReport
	if err := json.Unmarshal(m.Data, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkAgent1000Pods assigns 1,000 pods (fake runtime) to one agent and
// measures the time until the control plane has every one reported Running,
// then the agent's memory with them running, and idle (no pods).
func BenchmarkAgent1000Pods(b *testing.B) {
	const pods = 1000
	for b.Loop() {
		b.StopTimer()
		srv := testutil.StartNATS(b)
		cp := newFakeCP(b, srv, childNode)
		startChild(b, srv)
		testutil.Eventually(b, 20*time.Second, func() error {
			if r, s, _, _ := cp.counts(); r == 0 || s == 0 {
				return fmt.Errorf("agent not registered and synced yet")
			}
			return nil
		})
		time.Sleep(500 * time.Millisecond) // let the idle agent settle
		idle0 := childMem(b, cp.nc)
		time.Sleep(2 * time.Second)
		idle := childMem(b, cp.nc)
		b.ReportMetric(100*float64(idle.CPU-idle0.CPU)/float64(2*time.Second), "idle-CPU-%")
		b.StartTimer()
		start := time.Now()
		uids := make([]string, 0, pods)
		for i := range pods {
			p := cp.assign(mkpod(fmt.Sprintf("p%04d", i), api.RestartPolicyAlways, "fake://run"))
			uids = append(uids, p.UID)
		}
		assigned := time.Since(start)
		testutil.Eventually(b, 120*time.Second, func() error {
			n := 0
			for _, uid := range uids {
				if u := cp.last(uid); u != nil && u.Status.Phase == api.PodRunning {
					n++
				}
			}
			if n < pods {
				return fmt.Errorf("%d of %d pods running", n, pods)
			}
			return nil
		})
		all := time.Since(start)
		b.StopTimer()
		time.Sleep(time.Second)
		busy := childMem(b, cp.nc)
		time.Sleep(3 * time.Second)
		later := childMem(b, cp.nc)
		b.ReportMetric(100*float64(later.CPU-busy.CPU)/float64(3*time.Second), "1000pods-steady-CPU-%")
		cp.mu.Lock()
		batches := cp.batches
		cp.mu.Unlock()
		// Delete every pod (grace 1s; fake://run stops at once) and wait
		// until each is finalized and gone from the store.
		delStart := time.Now()
		for _, uid := range uids {
			cp.markDeleted(uid, ptr(int64(1)))
		}
		testutil.Eventually(b, 120*time.Second, func() error {
			cp.mu.Lock()
			defer cp.mu.Unlock()
			if n := len(cp.pods); n > 0 {
				return fmt.Errorf("%d pods not finalized", n)
			}
			return nil
		})
		deleted := time.Since(delStart)
		time.Sleep(3 * time.Second) // let log tailers and waiters end
		after := childMem(b, cp.nc)
		b.ReportMetric(float64(deleted.Milliseconds()), "ms-all-deleted")
		b.ReportMetric(float64(after.Goroutines), "goroutines-after-delete")
		b.ReportMetric(float64(idle.Goroutines), "idle-goroutines")
		b.ReportMetric(float64(after.RSS)/(1<<20), "after-delete-RSS-MB")
		b.ReportMetric(float64(all.Milliseconds()), "ms-all-running")
		b.ReportMetric(float64((busy.CPU - idle.CPU).Milliseconds()), "agent-CPU-ms-to-run-all")
		b.ReportMetric(float64(assigned.Milliseconds()), "ms-to-assign")
		b.ReportMetric(float64(batches), "status-batches")
		b.ReportMetric(float64(idle.RSS)/(1<<20), "idle-RSS-MB")
		b.ReportMetric(float64(idle.HeapInuse)/(1<<20), "idle-heap-MB")
		b.ReportMetric(float64(busy.RSS)/(1<<20), "1000pods-RSS-MB")
		b.ReportMetric(float64(busy.HeapInuse)/(1<<20), "1000pods-heap-MB")
		b.ReportMetric(float64(busy.Goroutines), "1000pods-goroutines")
		b.StartTimer()
	}
}
