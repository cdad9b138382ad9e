package api

import (
	"strings"
	"testing"
)

func svcOf(mut func(s *Service)) *Service {
	s := &Service{
		ObjectMeta: ObjectMeta{Name: "web"},
		Spec: ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []ServicePort{{Name: "http", Port: 80, TargetPort: FromString("http")}},
		},
	}
	if mut != nil {
		mut(s)
	}
	Default(s)
	return s
}

func TestServiceDefaults(t *testing.T) {
	s := svcOf(func(s *Service) {
		s.Spec.Ports = []ServicePort{{Port: 8080}}
		s.Spec.SessionAffinity = SessionAffinityClientIP
	})
	sp := s.Spec
	if sp.Type != ServiceTypeClusterIP || sp.Ports[0].Protocol != "TCP" || sp.Ports[0].TargetPort != FromInt(8080) {
		t.Fatalf("type/protocol/targetPort not defaulted: %+v", sp)
	}
	if *sp.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 {
		t.Fatalf("ClientIP timeout %d", *sp.SessionAffinityConfig.ClientIP.TimeoutSeconds)
	}
	if sp.ExternalTrafficPolicy != "" || sp.InternalTrafficPolicy != TrafficPolicyCluster {
		t.Fatalf("traffic policies %q %q", sp.ExternalTrafficPolicy, sp.InternalTrafficPolicy)
	}
	if len(sp.IPFamilies) != 1 || sp.IPFamilies[0] != "IPv4" || sp.IPFamilyPolicy != IPFamilyPolicySingleStack {
		t.Fatalf("ip families %v %q", sp.IPFamilies, sp.IPFamilyPolicy)
	}
	np := svcOf(func(s *Service) { s.Spec.Type = ServiceTypeNodePort })
	if np.Spec.ExternalTrafficPolicy != TrafficPolicyCluster || np.Spec.SessionAffinity != SessionAffinityNone {
		t.Fatalf("NodePort defaults: %+v", np.Spec)
	}
	again := DeepCopy(np)
	Default(again)
	if !jsonEqual(again, np) {
		t.Fatal("Default is not idempotent")
	}
	if err := Validate(np); err != nil {
		t.Fatal(err)
	}
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(s *Service)
		field string
		msg   string
	}{
		{"same port twice", func(s *Service) {
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "b", Port: 80})
		}, "spec.ports[1]", "duplicate port 80/TCP"},
		{"same port other protocol is fine", func(s *Service) {
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "dns", Port: 80, Protocol: "UDP"})
		}, "", ""},
		{"same nodePort twice", func(s *Service) {
			s.Spec.Type = ServiceTypeNodePort
			s.Spec.Ports = []ServicePort{{Name: "a", Port: 80, NodePort: 30080}, {Name: "b", Port: 81, NodePort: 30080}}
		}, "spec.ports[1].nodePort", "duplicate nodePort 30080/TCP"},
		{"names required when several", func(s *Service) {
			s.Spec.Ports = []ServicePort{{Port: 80}, {Name: "b", Port: 81}}
		}, "spec.ports[0].name", "required"},
		{"names unique", func(s *Service) {
			s.Spec.Ports = []ServicePort{{Name: "a", Port: 80}, {Name: "a", Port: 81}}
		}, "spec.ports[1].name", "duplicate value"},
		{"bad port name", func(s *Service) { s.Spec.Ports[0].Name = "Http_1" }, "spec.ports[0].name", "invalid value"},
		{"SCTP refused", func(s *Service) { s.Spec.Ports[0].Protocol = "SCTP" }, "spec.ports[0].protocol", "SCTP is not supported"},
		{"unknown protocol", func(s *Service) { s.Spec.Ports[0].Protocol = "QUIC" }, "spec.ports[0].protocol", "unsupported value"},
		{"port out of range", func(s *Service) { s.Spec.Ports[0].Port = 70000 }, "spec.ports[0].port", "between 1 and 65535"},
		{"targetPort number out of range", func(s *Service) { s.Spec.Ports[0].TargetPort = FromInt(-1) }, "spec.ports[0].targetPort", "between 1 and 65535"},
		{"targetPort bad name", func(s *Service) { s.Spec.Ports[0].TargetPort = FromString("no_such-name-is-too-long") }, "spec.ports[0].targetPort", "invalid value"},
		{"nodePort on ClusterIP", func(s *Service) { s.Spec.Ports[0].NodePort = 30080 }, "spec.ports[0].nodePort", "may not be used when type is ClusterIP"},
		{"malformed clusterIP", func(s *Service) { s.Spec.ClusterIP = "10.43.0.300" }, "spec.clusterIP", "must be an IPv4 address"},
		{"IPv6 clusterIP", func(s *Service) { s.Spec.ClusterIP = "fd00::1" }, "spec.clusterIP", "must be an IPv4 address"},
		{"headless NodePort", func(s *Service) {
			s.Spec.Type = ServiceTypeNodePort
			s.Spec.ClusterIP = ClusterIPNone
		}, "spec.clusterIP", "may not be None"},
		{"headless without ports is fine", func(s *Service) {
			s.Spec.ClusterIP = ClusterIPNone
			s.Spec.Ports = nil
		}, "", ""},
		{"ports required", func(s *Service) { s.Spec.Ports = nil }, "spec.ports", "required"},
		{"ExternalName needs a name", func(s *Service) { s.Spec.Type = ServiceTypeExternalName }, "spec.externalName", "required"},
		{"ExternalName bad name", func(s *Service) {
			s.Spec.Type = ServiceTypeExternalName
			s.Spec.ExternalName = "not a name"
		}, "spec.externalName", "invalid value"},
		{"ExternalName with clusterIP", func(s *Service) {
			s.Spec.Type = ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.ClusterIP = "10.43.0.5"
		}, "spec.clusterIP", "must be empty for type ExternalName"},
		{"ExternalName fine", func(s *Service) {
			s.Spec.Type = ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com."
		}, "", ""},
		{"externalName on ClusterIP", func(s *Service) { s.Spec.ExternalName = "db.example.com" }, "spec.externalName", "only be set when type is ExternalName"},
		{"bad selector", func(s *Service) { s.Spec.Selector = map[string]string{"app": "a b"} }, "spec.selector[app]", "invalid value"},
		{"bad selector key", func(s *Service) { s.Spec.Selector = map[string]string{"-x": "a"} }, "spec.selector[-x]", ""},
		{"bad affinity", func(s *Service) { s.Spec.SessionAffinity = "Sticky" }, "spec.sessionAffinity", "unsupported value"},
		{"affinity timeout", func(s *Service) {
			s.Spec.SessionAffinity = SessionAffinityClientIP
			s.Spec.SessionAffinityConfig = &SessionAffinityConfig{ClientIP: &ClientIPConfig{TimeoutSeconds: ptr(int32(90000))}}
		}, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "at most 86400"},
		{"bad type", func(s *Service) { s.Spec.Type = "Ingress" }, "spec.type", "unsupported value"},
		{"dual stack refused", func(s *Service) { s.Spec.IPFamilyPolicy = IPFamilyPolicyRequireDual }, "spec.ipFamilyPolicy", "not supported"},
		{"IPv6 family refused", func(s *Service) { s.Spec.IPFamilies = []string{"IPv6"} }, "spec.ipFamilies[0]", "only \"IPv4\""},
		{"externalTrafficPolicy on ClusterIP", func(s *Service) { s.Spec.ExternalTrafficPolicy = "Local" }, "spec.externalTrafficPolicy", "may only be set"},
		{"4 KB name", func(s *Service) { s.Name = strings.Repeat("a", 4096) }, "metadata.name", "must be no more than 63"},
		{"name starting with a digit", func(s *Service) { s.Name = "1web" }, "metadata.name", "DNS-1035"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(svcOf(tc.mut))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			st := asInvalid(t, err)
			msg, ok := causeFor(st, tc.field)
			if !ok || !strings.Contains(msg, tc.msg) {
				t.Fatalf("want %s: %q; got %v", tc.field, tc.msg, st.Causes)
			}
		})
	}
}

func TestValidateServiceUpdate(t *testing.T) {
	old := svcOf(func(s *Service) { s.Spec.ClusterIP = "10.43.0.20" })
	changed := DeepCopy(old)
	changed.Spec.ClusterIP = "10.43.0.21"
	changed.Spec.ClusterIPs = []string{"10.43.0.21"}
	st := asInvalid(t, ValidateUpdate(old, changed))
	if msg, ok := causeFor(st, "spec.clusterIP"); !ok || !strings.Contains(msg, "immutable") {
		t.Fatalf("clusterIP change: %v", st.Causes)
	}
	// To ExternalName, the IP goes.
	ext := DeepCopy(old)
	ext.Spec = ServiceSpec{Type: ServiceTypeExternalName, ExternalName: "db.example.com"}
	Default(ext)
	if err := ValidateUpdate(old, ext); err != nil {
		t.Fatal(err)
	}
	// A type change to NodePort keeps the IP.
	np := DeepCopy(old)
	np.Spec.Type = ServiceTypeNodePort
	np.Spec.ExternalTrafficPolicy = TrafficPolicyCluster
	if err := ValidateUpdate(old, np); err != nil {
		t.Fatal(err)
	}
}

func TestClusterDNSIP(t *testing.T) {
	for cidr, want := range map[string]string{"10.43.0.0/16": "10.43.0.10", "10.96.0.0/12": "10.96.0.10", "192.168.7.0/24": "192.168.7.10"} {
		ip, err := ClusterDNSIP(cidr)
		if err != nil || ip.String() != want {
			t.Errorf("ClusterDNSIP(%s) = %v, %v; want %s", cidr, ip, err, want)
		}
	}
	for _, bad := range []string{"", "10.43.0.0", "fd00::/64", "10.0.0.0/30"} {
		if _, err := ClusterDNSIP(bad); err == nil {
			t.Errorf("ClusterDNSIP(%q): no error", bad)
		}
	}
}

func TestServiceEnv(t *testing.T) {
	redis := svcOf(func(s *Service) {
		s.Name = "redis-primary"
		s.Namespace = "default"
		s.Spec.ClusterIP = "10.43.0.11"
		s.Spec.Ports = []ServicePort{{Name: "tcp", Port: 6379}, {Name: "dns", Port: 53, Protocol: "UDP"}}
	})
	headless := svcOf(func(s *Service) { s.Name = "db"; s.Spec.ClusterIP = ClusterIPNone })
	got := map[string]string{}
	var order []string
	for _, e := range ServiceEnv([]*Service{redis, headless}) {
		got[e.Name] = e.Value
		order = append(order, e.Name)
	}
	want := map[string]string{
		"REDIS_PRIMARY_SERVICE_HOST":        "10.43.0.11",
		"REDIS_PRIMARY_SERVICE_PORT":        "6379",
		"REDIS_PRIMARY_SERVICE_PORT_TCP":    "6379",
		"REDIS_PRIMARY_SERVICE_PORT_DNS":    "53",
		"REDIS_PRIMARY_PORT":                "tcp://10.43.0.11:6379",
		"REDIS_PRIMARY_PORT_6379_TCP":       "tcp://10.43.0.11:6379",
		"REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp",
		"REDIS_PRIMARY_PORT_6379_TCP_PORT":  "6379",
		"REDIS_PRIMARY_PORT_6379_TCP_ADDR":  "10.43.0.11",
		"REDIS_PRIMARY_PORT_53_UDP":         "udp://10.43.0.11:53",
		"REDIS_PRIMARY_PORT_53_UDP_PROTO":   "udp",
		"REDIS_PRIMARY_PORT_53_UDP_PORT":    "53",
		"REDIS_PRIMARY_PORT_53_UDP_ADDR":    "10.43.0.11",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d vars %v, want %d", len(got), order, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if order[0] != "REDIS_PRIMARY_SERVICE_HOST" || order[4] != "REDIS_PRIMARY_PORT" {
		t.Errorf("order differs from the kubelet's: %v", order)
	}

	kube := svcOf(func(s *Service) {
		s.Name, s.Namespace, s.Spec.ClusterIP = KubernetesServiceName, DefaultNamespace, "10.43.0.1"
		s.Spec.Ports = []ServicePort{{Name: "https", Port: 443}}
	})
	other := svcOf(func(s *Service) { s.Name, s.Namespace, s.Spec.ClusterIP = "api", "prod", "10.43.0.12" })
	mine := svcOf(func(s *Service) { s.Name, s.Namespace, s.Spec.ClusterIP = "cache", "dev", "10.43.0.13" })
	pod := &Pod{ObjectMeta: ObjectMeta{Name: "p", Namespace: "dev"}}
	names := func(env []EnvVar) string {
		var hosts []string
		for _, e := range env {
			if strings.HasSuffix(e.Name, "_SERVICE_HOST") {
				hosts = append(hosts, e.Name)
			}
		}
		return strings.Join(hosts, ",")
	}
	if n := names(PodServiceEnv(pod, []*Service{kube, other, mine})); n != "CACHE_SERVICE_HOST,KUBERNETES_SERVICE_HOST" {
		t.Fatalf("links on: %s", n)
	}
	pod.Spec.EnableServiceLinks = ptr(false)
	if n := names(PodServiceEnv(pod, []*Service{kube, other, mine})); n != "KUBERNETES_SERVICE_HOST" {
		t.Fatalf("links off: %s", n)
	}
}

func TestDecodeRefusesUnimplementedServiceFields(t *testing.T) {
	for _, f := range []string{"loadBalancerSourceRanges: [10.0.0.0/8]", "loadBalancerIP: 1.2.3.4", "loadBalancerClass: metallb", "healthCheckNodePort: 30001"} {
		m := "apiVersion: v1\nkind: Service\nmetadata:\n  name: lb\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n  " + f + "\n"
		_, err := Decode([]byte(m))
		st, ok := err.(*Status)
		if !ok || st.Code != 422 || !strings.Contains(st.Causes[0].Field, strings.Split(f, ":")[0]) {
			t.Errorf("%s: %v", f, err)
		}
	}
	// A plain Kubernetes Service manifest decodes.
	m := "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    nodePort: 30080\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 600\n"
	docs, err := Decode([]byte(m))
	if err != nil || len(docs) != 1 || len(docs[0].Warnings) != 0 {
		t.Fatalf("decode: %v %+v", err, docs)
	}
}
