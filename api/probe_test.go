package api

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestProbeDefaults(t *testing.T) {
	p := &Pod{ObjectMeta: ObjectMeta{Name: "a"}, Spec: PodSpec{Containers: []Container{{
		Name: "a", Image: "x",
		LivenessProbe:  &Probe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Port: FromInt(8080)}}},
		ReadinessProbe: &Probe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: FromInt(8080)}}, PeriodSeconds: 2, FailureThreshold: 1},
	}}}}
	Default(p)
	lp, rp := p.Spec.Containers[0].LivenessProbe, p.Spec.Containers[0].ReadinessProbe
	if lp.PeriodSeconds != 10 || lp.TimeoutSeconds != 1 || lp.SuccessThreshold != 1 || lp.FailureThreshold != 3 {
		t.Errorf("liveness timing = %+v", lp)
	}
	if lp.HTTPGet.Path != "/" || lp.HTTPGet.Scheme != URISchemeHTTP {
		t.Errorf("httpGet = %+v", lp.HTTPGet)
	}
	if rp.PeriodSeconds != 2 || rp.FailureThreshold != 1 {
		t.Errorf("set fields were changed: %+v", rp)
	}
	if err := Validate(p); err != nil {
		t.Errorf("defaulted pod with probes: %v", err)
	}
}

func TestIntOrStringJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want IntOrString
		err  bool
	}{
		{`8080`, FromInt(8080), false},
		{`"http"`, FromString("http"), false},
		{`"8080"`, FromString("8080"), false},
		{`1.5`, IntOrString{}, true},
		{`true`, IntOrString{}, true},
		{`4294967296`, IntOrString{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var v IntOrString
			err := json.Unmarshal([]byte(tc.in), &v)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if v != tc.want {
				t.Errorf("got %+v, want %+v", v, tc.want)
			}
			b, _ := json.Marshal(v)
			if string(b) != tc.in {
				t.Errorf("round trip %s, want %s", b, tc.in)
			}
		})
	}
}

func TestValidateProbes(t *testing.T) {
	httpProbe := func() *Probe {
		return &Probe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Path: "/healthz", Port: FromString("http")}}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(c *Container, s *PodSpec)
		field string // "" means valid
		msg   string
	}{
		{"http by port name", func(c *Container, _ *PodSpec) { c.LivenessProbe = httpProbe() }, "", ""},
		{"exec", func(c *Container, _ *PodSpec) {
			c.ReadinessProbe = &Probe{ProbeHandler: ProbeHandler{Exec: &ExecAction{Command: []string{"cat", "/tmp/ok"}}}}
		}, "", ""},
		{"tcp by number, startup", func(c *Container, _ *PodSpec) {
			c.StartupProbe = &Probe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: FromInt(80)}}, FailureThreshold: 30}
		}, "", ""},
		{"no handler", func(c *Container, _ *PodSpec) { c.LivenessProbe = &Probe{PeriodSeconds: 5} },
			"spec.containers[0].livenessProbe", "must specify a handler type"},
		{"two handlers", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.Exec = &ExecAction{Command: []string{"true"}}
			c.ReadinessProbe = p
		}, "spec.containers[0].readinessProbe", "may not specify more than one handler"},
		{"grpc refused", func(c *Container, _ *PodSpec) {
			c.LivenessProbe = &Probe{ProbeHandler: ProbeHandler{GRPC: &GRPCAction{Port: 9000}}}
		}, "spec.containers[0].livenessProbe.grpc", "not supported"},
		{"exec without command", func(c *Container, _ *PodSpec) {
			c.LivenessProbe = &Probe{ProbeHandler: ProbeHandler{Exec: &ExecAction{}}}
		}, "spec.containers[0].livenessProbe.exec.command", "required"},
		{"unknown port name", func(c *Container, _ *PodSpec) {
			c.ReadinessProbe = &Probe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Port: FromString("admin")}}}
		}, "spec.containers[0].readinessProbe.httpGet.port", `no port named "admin"`},
		{"port out of range", func(c *Container, _ *PodSpec) {
			c.LivenessProbe = &Probe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: FromInt(70000)}}}
		}, "spec.containers[0].livenessProbe.tcpSocket.port", "between 1 and 65535"},
		{"port zero", func(c *Container, _ *PodSpec) {
			c.LivenessProbe = &Probe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{}}}
		}, "spec.containers[0].livenessProbe.httpGet.port", "between 1 and 65535"},
		{"relative path", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.HTTPGet.Path = "healthz"
			c.LivenessProbe = p
		}, "spec.containers[0].livenessProbe.httpGet.path", "absolute"},
		{"bad scheme", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.HTTPGet.Scheme = "FTP"
			c.LivenessProbe = p
		}, "spec.containers[0].livenessProbe.httpGet.scheme", "FTP"},
		{"header with a line break", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.HTTPGet.HTTPHeaders = []HTTPHeader{{Name: "X-A", Value: "a\r\nHost: evil"}}
			c.LivenessProbe = p
		}, "spec.containers[0].livenessProbe.httpGet.httpHeaders[0].value", "line break"},
		{"liveness successThreshold", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.SuccessThreshold = 2
			c.LivenessProbe = p
		}, "spec.containers[0].livenessProbe.successThreshold", "must be 1"},
		{"startup successThreshold", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.SuccessThreshold = 3
			c.StartupProbe = p
		}, "spec.containers[0].startupProbe.successThreshold", "must be 1"},
		{"readiness successThreshold 2 is fine", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.SuccessThreshold = 2
			c.ReadinessProbe = p
		}, "", ""},
		{"negative period", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.PeriodSeconds = -1
			c.ReadinessProbe = p
		}, "spec.containers[0].readinessProbe.periodSeconds", "greater than or equal to 0"},
		{"negative failureThreshold", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.FailureThreshold = -3
			c.LivenessProbe = p
		}, "spec.containers[0].livenessProbe.failureThreshold", "greater than or equal to 0"},
		{"readiness grace forbidden", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.TerminationGracePeriodSeconds = ptr(int64(5))
			c.ReadinessProbe = p
		}, "spec.containers[0].readinessProbe.terminationGracePeriodSeconds", "forbidden"},
		{"liveness grace zero", func(c *Container, _ *PodSpec) {
			p := httpProbe()
			p.TerminationGracePeriodSeconds = ptr(int64(0))
			c.LivenessProbe = p
		}, "spec.containers[0].livenessProbe.terminationGracePeriodSeconds", "greater than 0"},
		{"init container probe", func(_ *Container, s *PodSpec) {
			s.InitContainers = []Container{{Name: "init", Image: "x", ReadinessProbe: httpProbe()}}
		}, "spec.initContainers[0].readinessProbe", "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			tc.edit(&p.Spec.Containers[0], &p.Spec)
			err := Validate(p)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid probe refused: %v", err)
				}
				return
			}
			st := asInvalid(t, err)
			msg, ok := causeFor(st, tc.field)
			if !ok {
				t.Fatalf("no cause for %s in %v", tc.field, st.Causes)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: %q, want it to contain %q", tc.field, msg, tc.msg)
			}
		})
	}
}
