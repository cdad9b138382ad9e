package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// benchCluster returns nNodes nodes (a quarter containerd-only, a quarter
// wasm-only, half both; 32 cpu, 128Gi, 110 pods, 500 wasm pods) and nPods
// pending pods of mixed sizes, 30% of them wasm.
func benchCluster(nNodes, nPods int) ([]*api.Node, []*api.Pod) {
	nodes := make([]*api.Node, nNodes)
	for i := range nodes {
		var opt nodeOpt = runtimes(api.RuntimeContainerd, api.RuntimeWasm)
		switch i % 4 {
		case 0:
			opt = runtimes(api.RuntimeContainerd)
		case 1:
			opt = runtimes(api.RuntimeWasm)
		}
		nodes[i] = mkNode(fmt.Sprintf("node-%05d", i), "32", "128Gi", opt, maxPods("110", "500"))
	}
	cpus := []string{"50m", "100m", "250m", "500m", "1", "2"}
	mems := []string{"32Mi", "128Mi", "256Mi", "512Mi", "1Gi", "2Gi"}
	parsedCPU := make([]resource.Quantity, len(cpus))
	parsedMem := make([]resource.Quantity, len(mems))
	for i := range cpus {
		parsedCPU[i], parsedMem[i] = resource.MustParse(cpus[i]), resource.MustParse(mems[i])
	}
	r := rand.New(rand.NewPCG(1, 2))
	pods := make([]*api.Pod, nPods)
	for i := range pods {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("pod-%06d", i), Namespace: "default"}}
		p.Spec.Containers = []api.Container{{Name: "c", Image: "img", Resources: api.ResourceRequirements{
			Requests: api.ResourceList{api.ResourceCPU: parsedCPU[r.IntN(len(cpus))], api.ResourceMemory: parsedMem[r.IntN(len(mems))]}}}}
		if r.IntN(10) < 3 {
			wasm(p)
		}
		pods[i] = p
	}
	return nodes, pods
}

// cpuTime is the CPU time (user + system) this process has used: the
// scheduler, the store client and, in the store benchmark, the embedded
// NATS server too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func reportLatency(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(percentile(lat, 0.50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(slices.Max(lat).Nanoseconds())/1e3, "max-µs")
}

const benchNodes, benchPods = 5000, 50000

// BenchmarkScheduleInMemory schedules 50,000 pending pods onto 5,000 nodes
// with an in-memory compare-and-set binder whose echoes come back through
// the event stream: the speed of decisions and the loop itself. Run with
// -benchtime=1x.
func BenchmarkScheduleInMemory(b *testing.B) {
	for range b.N {
		b.StopTimer()
		nodes, pods := benchCluster(benchNodes, benchPods)
		m := newMemCluster(2*benchPods + benchNodes + 16)
		m.want, m.done = benchPods, make(chan struct{})
		for _, n := range nodes {
			m.putNode(n)
		}
		for _, p := range pods {
			m.putPod(p)
		}
		m.synced()
		s := NewWith(Config{}, m, m, slog.New(slog.DiscardHandler))
		s.core.recordLatency = true
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		go func() { runDone <- s.RunEvents(ctx, m.events) }()
		<-m.done
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		b.StopTimer()
		b.ReportMetric(float64(cpu.Microseconds())/benchPods, "cpu-µs/pod")
		cancel()
		if err := <-runDone; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(benchPods)/elapsed.Seconds(), "pods/s")
		reportLatency(b, s.core.latencies)
		b.Logf("nodes visited per decision %.1f", float64(s.core.visited)/float64(s.Stats().Attempts))
		if st := s.Stats(); st.Bound != benchPods || st.Unschedulable != 0 {
			b.Fatalf("stats %+v, want %d bound and none unschedulable", st, benchPods)
		}
	}
}

// BenchmarkDecide measures one decision (filter a sample of 5,000 nodes,
// score, pick) for a pod that fits, on a cluster half full.
func BenchmarkDecide(b *testing.B) {
	for _, strategy := range []Strategy{BinPack, Spread} {
		b.Run(string(strategy), func(b *testing.B) {
			nodes, pods := benchCluster(benchNodes, benchPods)
			c, err := newCore(Config{Strategy: strategy}, nil, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range nodes {
				c.handleEvent(storeEvent(n))
			}
			// Fill the cluster with half the pods, as the scheduler would.
			for _, p := range pods[:benchPods/2] {
				c.handleEvent(storeEvent(p))
				pi := c.pop()
				if ni, _ := c.decide(pi); ni != nil {
					c.setCounted(pi, ni.name)
					pi.state = stateBound
				}
			}
			probe := c.pods[podKey(pods[0])]
			b.ResetTimer()
			for b.Loop() {
				if ni, _ := c.decide(probe); ni == nil {
					b.Fatal("no node")
				}
			}
		})
	}
}

// BenchmarkDiagnose measures a decision for a pod that fits nowhere: every
// node is checked and the reasons counted.
func BenchmarkDiagnose(b *testing.B) {
	nodes, _ := benchCluster(benchNodes, 0)
	c, err := newCore(Config{}, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		c.handleEvent(storeEvent(n))
	}
	c.handleEvent(storeEvent(mkPod("huge", "64", "1Gi", wasm)))
	pi := c.pop()
	var msg string
	for b.Loop() {
		if _, msg = c.decide(pi); msg == "" {
			b.Fatal("huge pod fits")
		}
	}
	b.Log(msg)
}

// BenchmarkScheduleStore schedules 50,000 pending pods onto 5,000 nodes
// through the real store over a real embedded NATS server: the watches
// replay all objects, every bind is a compare-and-set KV write, and the
// echo of every bind comes back through the watch. Objects are created
// before the timer starts. Sub-benchmarks: the test helper's server over
// TCP loopback (NATS' default sync interval), and, as `kyb server` runs it,
// an in-process connection with the default interval or with sync always
// (an fsync per write). Run with -benchtime=1x.
func BenchmarkScheduleStore(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		benchScheduleStore(b, func(b *testing.B) (*store.Store, *store.Store) {
			srv := testutil.StartNATS(b)
			return openStore(b, srv), openStore(b, srv)
		})
	})
	// A 3-server NATS cluster, the objects bucket on three replicas, sync
	// always: what a highly available control plane binds at.
	b.Run("cluster3,R3,sync=always", func(b *testing.B) {
		benchScheduleStore(b, func(b *testing.B) (*store.Store, *store.Store) {
			srvs := testutil.StartNATSCluster(b, 3, true)
			return openStoreR(b, srvs[1], 3), openStoreR(b, srvs[0], 3)
		})
	})
	for _, always := range []bool{false, true} {
		name := "inprocess,sync=interval"
		if always {
			name = "inprocess,sync=always"
		}
		b.Run(name, func(b *testing.B) {
			benchScheduleStore(b, func(b *testing.B) (*store.Store, *store.Store) {
				srv := startServer(b, always)
				return openStoreInProcess(b, srv), openStoreInProcess(b, srv)
			})
		})
	}
}

func startServer(b *testing.B, always bool) *server.Server {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: b.TempDir(), SyncAlways: always, NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats not ready")
	}
	b.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// openStoreR opens the store through a connection to srv, with replicas copies.
func openStoreR(b *testing.B, srv *testutil.Server, replicas int) *store.Store {
	js, err := jetstream.New(testutil.Connect(b, srv))
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), js, store.Config{Logger: slog.New(slog.DiscardHandler), Replicas: replicas})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func openStoreInProcess(b *testing.B, srv *server.Server) *store.Store {
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), js, store.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func benchScheduleStore(b *testing.B, open func(b *testing.B) (writer, sched *store.Store)) {
	for range b.N {
		b.StopTimer()
		st, schedStore := open(b)
		nodes, pods := benchCluster(benchNodes, benchPods)
		objs := make([]api.Object, 0, len(nodes)+len(pods))
		for _, n := range nodes {
			objs = append(objs, n)
		}
		for _, p := range pods {
			objs = append(objs, p)
		}
		t0 := time.Now()
		createAll(b, st, objs)
		b.Logf("created %d objects in %v", len(objs), time.Since(t0))

		s := New(Config{}, schedStore, slog.New(slog.DiscardHandler))
		s.core.recordLatency = true
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		go func() { runDone <- s.Run(ctx) }()
		<-s.Ready()
		synced := time.Since(start)
		for s.Stats().Bound < benchPods {
			time.Sleep(2 * time.Millisecond)
		}
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		b.StopTimer()
		b.ReportMetric(float64(cpu.Microseconds())/benchPods, "cpu-µs/pod")
		cancel()
		if err := <-runDone; err != nil {
			b.Fatal(err)
		}
		st2 := s.Stats()
		b.Logf("cache synced after %v; all bound after %v; %+v; nodes visited per decision %.1f", synced, elapsed, st2, float64(s.core.visited)/float64(st2.Attempts))
		b.ReportMetric(float64(benchPods)/elapsed.Seconds(), "pods/s")
		b.ReportMetric(float64(benchPods)/(elapsed-synced).Seconds(), "pods/s-after-sync")
		sb := s.core.binder.(*StoreBinder)
		b.Logf("store writes: %d groups, %.1f objects per group, %v per group", sb.groups, float64(sb.written)/float64(sb.groups), sb.busy/time.Duration(sb.groups))
		reportLatency(b, s.core.latencies)
	}
}
