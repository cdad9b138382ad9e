package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOptionsCheck(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"off", Options{Addr: "off"}, true},
		{"empty", Options{}, true},
		{"loopback v4", Options{Addr: "127.0.0.1:9363"}, true},
		{"loopback v6", Options{Addr: "[::1]:9363"}, true},
		{"localhost", Options{Addr: "localhost:9363"}, true},
		{"all interfaces, nothing else", Options{Addr: ":9363"}, false},
		{"0.0.0.0, nothing else", Options{Addr: "0.0.0.0:9363"}, false},
		{"public with a token", Options{Addr: "0.0.0.0:9363", Token: "s3cret"}, true},
		{"public, insecure", Options{Addr: "0.0.0.0:9363", Insecure: true}, true},
		{"no port", Options{Addr: "127.0.0.1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Check()
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%+v) = %v, want ok %v", tt.o, err, tt.ok)
			}
		})
	}
	if _, err := Serve(context.Background(), Options{Addr: "0.0.0.0:0"}, nil); err == nil {
		t.Fatal("Serve listened beyond loopback with no token")
	}
}

// TestServeToken: with a token, a scrape without it (or with another) is a
// 401 and reads nothing; with it, the families come.
func TestServeToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, Options{Addr: "127.0.0.1:0", Token: "s3cret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret2", "s3cret"} {
		if code, body := get(auth); code != 401 || strings.Contains(body, "go_goroutines") {
			t.Errorf("Authorization %q: %d", auth, code)
		}
	}
	if code, body := get("Bearer s3cret"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("with the token: %d %.200s", code, body)
	}
}
