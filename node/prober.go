package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// probeKind is one of a container's three probes.
type probeKind int

const (
	probeStartup probeKind = iota + 1
	probeLiveness
	probeReadiness
)

func (k probeKind) String() string {
	switch k {
	case probeStartup:
		return "Startup"
	case probeLiveness:
		return "Liveness"
	case probeReadiness:
		return "Readiness"
	}
	return "probeKind(" + strconv.Itoa(int(k)) + ")"
}

// probeEvent is a change of a probe's result, from a container's prober to
// its pod worker: the startup probe succeeded (or failed for good), the
// liveness probe failed, the readiness probe flipped.
type probeEvent struct {
	name, id string
	kind     probeKind
	ok       bool
	msg      string
}

// probeTarget is what a prober reaches: the container in its runtime, and
// the address its network probes go to.
type probeTarget struct {
	rt    runtimes.Runtime
	id    string
	host  string // the pod's IP (the node's for host network and wasm pods)
	wasm  bool   // a wasm pod: tcpSocket goes to the port's hostPort
	ports []api.ContainerPort
}

// probeTiming is a probe's timing with Kubernetes' defaults for what is
// unset, in wall time.
type probeTiming struct {
	delay, period, timeout time.Duration
	success, failure       int32
}

func timingOf(p *api.Probe, second time.Duration) probeTiming {
	pos := func(v, def int32) int32 {
		if v <= 0 {
			return def
		}
		return v
	}
	return probeTiming{
		delay:   time.Duration(max(p.InitialDelaySeconds, 0)) * second,
		period:  time.Duration(pos(p.PeriodSeconds, api.DefaultProbePeriodSeconds)) * second,
		timeout: time.Duration(pos(p.TimeoutSeconds, api.DefaultProbeTimeoutSeconds)) * second,
		success: pos(p.SuccessThreshold, api.DefaultProbeSuccessThreshold),
		failure: pos(p.FailureThreshold, api.DefaultProbeFailureThreshold),
	}
}

// startProbes starts the prober of c's current attempt, when it has probes:
// one goroutine that runs the startup probe until it succeeds, then the
// liveness and readiness probes, each on its own period, and reports each
// change of their results to the worker. It ends when the container stops
// (stopProbes), the agent stops, or a liveness or startup probe failed.
func (w *podWorker) startProbes(ctx context.Context, c *ctr) {
	c.stopProbes()
	s := c.spec
	if s.StartupProbe == nil && s.LivenessProbe == nil && s.ReadinessProbe == nil {
		return
	}
	t := probeTarget{rt: w.rt, id: c.id, host: w.a.nodeIP, wasm: w.rtName == api.RuntimeWasm, ports: s.Ports}
	if w.sandbox != nil && w.sandbox.IP != "" {
		t.host = w.sandbox.IP
	}
	pctx, cancel := context.WithCancel(ctx)
	c.probeCancel = cancel
	start := c.startedAt
	if start.IsZero() {
		start = time.Now()
	}
	w.a.wg.Go(func() { w.runProbes(pctx, s, t, start) })
}

// stopProbes ends the prober of c's current attempt, if any.
func (c *ctr) stopProbes() {
	if c.probeCancel != nil {
		c.probeCancel()
		c.probeCancel = nil
	}
}

// onProbe applies a prober's report to the container it is about, if that
// attempt still runs.
func (w *podWorker) onProbe(ev probeEvent) {
	c := w.find(ev.name)
	if c == nil || c.id != ev.id || !c.running {
		return
	}
	switch ev.kind {
	case probeStartup:
		if ev.ok {
			c.startupOK = true
		} else {
			c.unhealthy, c.unhealthyKind = ev.msg, probeStartup
		}
	case probeLiveness:
		if !ev.ok {
			c.unhealthy, c.unhealthyKind = ev.msg, probeLiveness
		}
	case probeReadiness:
		c.readyOK = ev.ok
	}
	w.log.Debug("probe result changed", "container", ev.name, "probe", ev.kind, "ok", ev.ok, "msg", ev.msg)
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// probeSched is one probe's schedule and its run of equal results.
type probeSched struct {
	kind  probeKind
	p     *api.Probe
	tm    probeTiming
	due   time.Time
	state int // 0 unknown, 1 success, -1 failure (as last reported)
	succ  int32
	fail  int32
}

func (w *podWorker) runProbes(ctx context.Context, spec api.Container, t probeTarget, start time.Time) {
	second := w.a.cfg.ProbeSecond
	send := func(kind probeKind, ok bool, msg string) bool {
		select {
		case w.probes <- probeEvent{name: spec.Name, id: t.id, kind: kind, ok: ok, msg: msg}:
			return true
		case <-ctx.Done():
		case <-w.done:
		}
		return false
	}
	if p := spec.StartupProbe; p != nil {
		tm := timingOf(p, second)
		due := start.Add(tm.delay)
		var fails int32
		for {
			if !sleepUntil(ctx, due) {
				return
			}
			ok, msg := w.probeOnce(ctx, p, tm, t)
			if ctx.Err() != nil {
				return
			}
			due = time.Now().Add(tm.period)
			if ok {
				if !send(probeStartup, true, "") {
					return
				}
				break
			}
			fails++
			w.event(api.EventTypeWarning, runtimes.ReasonUnhealthy, spec.Name, "Startup probe failed: %s", msg)
			if fails >= tm.failure {
				send(probeStartup, false, "Startup probe failed: "+msg)
				return
			}
		}
	}
	var scheds []*probeSched
	now := time.Now()
	// A container without a startup probe counts its initial delays from
	// its start; after a startup probe, no probe runs before it succeeded.
	for _, s := range []struct {
		kind probeKind
		p    *api.Probe
	}{{probeLiveness, spec.LivenessProbe}, {probeReadiness, spec.ReadinessProbe}} {
		if s.p == nil {
			continue
		}
		tm := timingOf(s.p, second)
		due := start.Add(tm.delay)
		if due.Before(now) {
			due = now
		}
		scheds = append(scheds, &probeSched{kind: s.kind, p: s.p, tm: tm, due: due})
	}
	for len(scheds) > 0 {
		next := scheds[0].due
		for _, s := range scheds[1:] {
			if s.due.Before(next) {
				next = s.due
			}
		}
		if !sleepUntil(ctx, next) {
			return
		}
		for _, s := range scheds {
			if time.Now().Before(s.due) {
				continue
			}
			ok, msg := w.probeOnce(ctx, s.p, s.tm, t)
			if ctx.Err() != nil {
				return
			}
			s.due = time.Now().Add(s.tm.period)
			if ok {
				s.succ, s.fail = s.succ+1, 0
				if s.state != 1 && (s.succ >= s.tm.success || s.kind == probeLiveness) {
					s.state = 1
					if s.kind == probeReadiness && !send(s.kind, true, "") {
						return
					}
				}
				continue
			}
			s.succ, s.fail = 0, s.fail+1
			w.event(api.EventTypeWarning, runtimes.ReasonUnhealthy, spec.Name, "%s probe failed: %s", s.kind, msg)
			if s.state != -1 && s.fail >= s.tm.failure {
				s.state = -1
				if !send(s.kind, false, s.kind.String()+" probe failed: "+msg) {
					return
				}
				if s.kind == probeLiveness {
					return // the container is killed; its next attempt has a new prober
				}
			}
		}
	}
}

// probeOnce runs p once against t, within the probe's timeout, and says
// whether it succeeded and, if not, why.
func (w *podWorker) probeOnce(ctx context.Context, p *api.Probe, tm probeTiming, t probeTarget) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, tm.timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		return execProbe(ctx, p.Exec, tm.timeout, t)
	case p.HTTPGet != nil:
		return httpProbe(ctx, p.HTTPGet, tm.timeout, t)
	case p.TCPSocket != nil:
		return tcpProbe(ctx, p.TCPSocket, tm.timeout, t)
	}
	return false, "the probe has no handler"
}

func execProbe(ctx context.Context, e *api.ExecAction, timeout time.Duration, t probeTarget) (bool, string) {
	ex, ok := t.rt.(runtimes.Execer)
	if !ok {
		return false, "exec probes are not supported by this runtime"
	}
	res, err := ex.ExecSync(ctx, t.id, e.Command, timeout)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return false, fmt.Sprintf("command %q timed out after %v", e.Command, timeout)
	case err != nil:
		return false, err.Error()
	case res.ExitCode != 0:
		msg := fmt.Sprintf("command %q exited with code %d", e.Command, res.ExitCode)
		if out := strings.TrimSpace(string(res.Output)); out != "" {
			msg += ": " + out
		}
		return false, msg
	}
	return true, ""
}

// resolvePort is a probe's port as a number: itself, or the containerPort
// of the container's port of that name.
func resolvePort(p api.IntOrString, ports []api.ContainerPort) (api.ContainerPort, error) {
	if !p.IsString {
		for _, cp := range ports {
			if cp.ContainerPort == p.IntVal {
				return cp, nil
			}
		}
		return api.ContainerPort{ContainerPort: p.IntVal}, nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return cp, nil
		}
	}
	return api.ContainerPort{}, fmt.Errorf("the container has no port named %q", p.StrVal)
}

// probeClient sends the network httpGet probes: no keep-alive (a probe
// must not hold connections), no proxy, certificates not checked, and, as
// Kubernetes, redirects followed only on the same host (at most 10); a
// redirect elsewhere is not followed, and its 3xx status counts as success.
var probeClient = &http.Client{
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 || req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	},
	Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as Kubernetes' HTTPS probes
	},
}

func httpProbe(ctx context.Context, h *api.HTTPGetAction, timeout time.Duration, t probeTarget) (bool, string) {
	cp, err := resolvePort(h.Port, t.ports)
	if err != nil {
		return false, err.Error()
	}
	host := h.Host
	if host == "" {
		host = t.host
	}
	scheme := "http"
	if h.Scheme == api.URISchemeHTTPS {
		scheme = "https"
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(cp.ContainerPort))) + path)
	if err != nil {
		return false, fmt.Sprintf("probe URL: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, fmt.Sprintf("probe request: %v", err)
	}
	req.Header.Set("User-Agent", "kube-probe/kyb")
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	var code int
	if hp, ok := t.rt.(runtimes.HTTPProber); ok && h.Host == "" {
		// A wasm container's HTTP is its WAGI handler, served in process
		// (a probe that names a host connects to it over the network).
		code, err = hp.ProbeHTTP(ctx, t.id, cp.ContainerPort, req)
	} else {
		var resp *http.Response
		resp, err = probeClient.Do(req)
		if err == nil {
			code = resp.StatusCode
			_, _ = io.CopyN(io.Discard, resp.Body, 10<<10)
			resp.Body.Close()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return false, fmt.Sprintf("Get %q: timed out after %v", u.String(), timeout)
	case err != nil:
		return false, err.Error()
	case code < 200 || code >= 400:
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", code)
	}
	return true, ""
}

func tcpProbe(ctx context.Context, s *api.TCPSocketAction, timeout time.Duration, t probeTarget) (bool, string) {
	cp, err := resolvePort(s.Port, t.ports)
	if err != nil {
		return false, err.Error()
	}
	host, port := s.Host, cp.ContainerPort
	if t.wasm && s.Host == "" {
		// A wasm pod has no network of its own: what it serves listens on
		// its ports' hostPorts, on their hostIP (loopback when unset).
		if cp.HostPort == 0 {
			return false, fmt.Sprintf("port %d has no hostPort: a wasm container serves only the ports it maps to the node", cp.ContainerPort)
		}
		port, host = cp.HostPort, "127.0.0.1"
		if ip := net.ParseIP(cp.HostIP); ip != nil && !ip.IsUnspecified() {
			host = cp.HostIP
		}
	}
	if host == "" {
		host = t.host
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Sprintf("dial tcp %s: timed out after %v", addr, timeout)
		}
		return false, err.Error()
	}
	conn.Close()
	return true, ""
}
