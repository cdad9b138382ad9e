package metrics

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every kyb family.
const Namespace = "kyb"

// Registry is the one registry served on /metrics: the families below, the
// Go runtime collector and the process collector.
var Registry = prometheus.NewRegistry()

// Enabled switches the observations of this package on (the default). The
// apiserver benchmark turns it off to measure what instrumentation costs;
// nothing else should.
var Enabled atomic.Bool

// latencyBuckets span 0.5 ms to about 16 s: API calls and store operations
// on a NATS bus are sub-millisecond to seconds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

var (
	// APIRequestDuration is the latency of the kyb.api.v1 and kyb.node
	// request verbs, by endpoint name and reply code (streamed verbs:
	// only the error replies that end them before they stream).
	APIRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "apiserver", Name: "request_duration_seconds",
		Help:    "Latency of API requests from receipt to reply, by verb (endpoint) and reply code.",
		Buckets: latencyBuckets,
	}, []string{"verb", "code"})

	// ScheduleAttempts counts the scheduler's decisions by result
	// (scheduled, unschedulable) and its failed binds (error).
	ScheduleAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "schedule_attempts_total",
		Help: "Scheduling decisions by result: scheduled (a node was chosen), unschedulable (none fits), error (the bind failed for another reason than a conflict).",
	}, []string{"result"})

	// PodsBound counts the binds the scheduler wrote; rate() of it is pods
	// bound per second.
	PodsBound = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "pods_bound_total",
		Help: "Pods bound to a node by this scheduler (rate() is pods bound per second).",
	})

	// PendingPods is the scheduler's queue depth: active (waiting for a
	// decision; an upper bound, as entries superseded by a newer version
	// of their pod are counted until popped) and unschedulable (parked
	// until the cluster changes).
	PendingPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "pending_pods",
		Help: "Pods waiting in the scheduler, by queue: active (to decide) or unschedulable (parked until the cluster changes).",
	}, []string{"queue"})

	// StoreOperationDuration is the latency of the store's operations on
	// the JetStream KV bucket.
	StoreOperationDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "store", Name: "operation_duration_seconds",
		Help:    "Latency of the object store's operations (create, get, update, delete, list, update_all) on JetStream KV.",
		Buckets: latencyBuckets,
	}, []string{"operation"})

	// PodStartDuration is, per runtime, the time from a pod worker's first
	// sight of a pod to all its containers running (images pulled and
	// init containers done included), as the kubelet's
	// kubelet_pod_start_duration_seconds.
	PodStartDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "node", Name: "pod_start_duration_seconds",
		Help:    "Time from the agent's first sight of a pod to all of its containers running, by runtime (containerd, wasm).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"runtime"})

	// WAGIRequests counts the HTTP requests a wasm pod served, by pod and
	// status code.
	WAGIRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "wagi", Name: "requests_total",
		Help: "HTTP requests served by wasm pods (WAGI), by namespace, pod and status code.",
	}, []string{"namespace", "pod", "code"})

	// UsageReports counts the usage reports the control plane took in, by
	// result (stored, rejected).
	UsageReports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "apiserver", Name: "usage_reports_total",
		Help: "Node usage reports received, by result: stored, or rejected (a pod not bound to the reporting node).",
	}, []string{"result"})
)

func init() {
	Enabled.Store(true)
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		APIRequestDuration, ScheduleAttempts, PodsBound, PendingPods,
		StoreOperationDuration, PodStartDuration, WAGIRequests, UsageReports,
	)
}

// ObserveRequest records one API request of verb answered with code.
func ObserveRequest(verb string, code int, since time.Time) {
	if !Enabled.Load() {
		return
	}
	APIRequestDuration.WithLabelValues(verb, codeString(code)).Observe(time.Since(since).Seconds())
}

// ObserveStore records one store operation that began at since.
func ObserveStore(op string, since time.Time) {
	if !Enabled.Load() {
		return
	}
	StoreOperationDuration.WithLabelValues(op).Observe(time.Since(since).Seconds())
}

// ObservePodStart records that a pod of runtime took d to start.
func ObservePodStart(runtime string, d time.Duration) {
	if !Enabled.Load() {
		return
	}
	PodStartDuration.WithLabelValues(runtime).Observe(d.Seconds())
}

// CountWAGI counts one WAGI request of the pod answered with code.
func CountWAGI(namespace, pod string, code int) {
	if !Enabled.Load() {
		return
	}
	WAGIRequests.WithLabelValues(namespace, pod, codeString(code)).Inc()
}

// ForgetWAGIPod deletes the WAGI series of a pod whose server stopped, so
// that the pod label's cardinality follows the pods that run.
func ForgetWAGIPod(namespace, pod string) {
	WAGIRequests.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "pod": pod})
}

// codes keeps the label strings of common codes, so observing allocates
// nothing for them.
var codes = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

func codeString(code int) string {
	if s, ok := codes[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}

// FamilyNames lists the names of kyb's own families (not the Go and
// process collectors'), for docs and tests.
func FamilyNames() []string {
	var names []string
	for _, c := range []prometheus.Collector{APIRequestDuration, ScheduleAttempts, PodsBound, PendingPods,
		StoreOperationDuration, PodStartDuration, WAGIRequests, UsageReports} {
		ch := make(chan *prometheus.Desc, 4)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			s := d.String()
			if i := strings.Index(s, `fqName: "`); i >= 0 {
				s = s[i+len(`fqName: "`):]
				names = append(names, s[:strings.IndexByte(s, '"')])
			}
		}
	}
	return names
}
