package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// TestHTTPProbe: what counts as success for an httpGet probe over the
// network.
func TestHTTPProbe(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError) // reached only by following a redirect off host
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/redirect-here":
			http.Redirect(w, r, "/missing", http.StatusFound)
		case "/redirect-away":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/hang":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	host, portS, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portS)
	target := probeTarget{host: host, ports: []api.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	for _, tc := range []struct {
		path string
		port api.IntOrString
		ok   bool
		msg  string
	}{
		{"/ok", api.FromString("web"), true, ""},
		{"/ok", api.FromInt(int32(port)), true, ""},
		{"/ok", api.FromString("admin"), false, `no port named "admin"`},
		{"/nope", api.FromString("web"), false, "statuscode: 404"},
		{"/redirect-here", api.FromString("web"), false, "statuscode: 404"},
		{"/redirect-away", api.FromString("web"), true, ""},
		{"/hang", api.FromString("web"), false, "timed out"},
	} {
		t.Run(tc.path+" "+tc.port.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			ok, msg := httpProbe(ctx, &api.HTTPGetAction{Path: tc.path, Port: tc.port}, 200*time.Millisecond, target)
			if ok != tc.ok || !strings.Contains(msg, tc.msg) {
				t.Errorf("httpProbe = %v %q, want %v containing %q", ok, msg, tc.ok, tc.msg)
			}
		})
	}
}

func TestTimingDefaults(t *testing.T) {
	tm := timingOf(&api.Probe{InitialDelaySeconds: 2}, time.Millisecond)
	want := probeTiming{delay: 2 * time.Millisecond, period: 10 * time.Millisecond, timeout: time.Millisecond, success: 1, failure: 3}
	if tm != want {
		t.Errorf("timingOf an undefaulted probe = %+v, want %+v", tm, want)
	}
}
