// Command cgi is a WAGI test module: a net/http/cgi handler built with
// GOOS=wasip1 GOARCH=wasm. It echoes what it got, and /sleep?d=DUR sleeps
// first, /status/N answers N, /alloc?mib=N allocates N MiB, /env?n=A&n=B
// prints the environment variables A and B as A="value" (or A unset),
// /big?mib=N answers N MiB.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"strconv"
	"strings"
	"time"
)

var sink [][]byte

func main() {
	err := cgi.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/sleep":
			d, _ := time.ParseDuration(r.URL.Query().Get("d"))
			time.Sleep(d)
		case strings.HasPrefix(r.URL.Path, "/status/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(n)
			fmt.Fprintf(w, "status %d\n", n)
			return
		case r.URL.Path == "/alloc":
			n, _ := strconv.Atoi(r.URL.Query().Get("mib"))
			for range n {
				sink = append(sink, make([]byte, 1<<20))
			}
		case r.URL.Path == "/env":
			w.Header().Set("Content-Type", "text/plain")
			for _, n := range r.URL.Query()["n"] {
				if v, ok := os.LookupEnv(n); ok {
					fmt.Fprintf(w, "%s=%q\n", n, v)
				} else {
					fmt.Fprintf(w, "%s unset\n", n)
				}
			}
			return
		case r.URL.Path == "/big":
			n, _ := strconv.Atoi(r.URL.Query().Get("mib"))
			w.Header().Set("Content-Type", "application/octet-stream")
			chunk := make([]byte, 1<<20)
			for range n {
				w.Write(chunk)
			}
			return
		case r.URL.Path == "/stderr":
			fmt.Fprintln(os.Stderr, "cgi module writes to stderr")
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Method", r.Method)
		fmt.Fprintf(w, "method=%s\npath=%s\nquery=%s\nheader=%s\nbody=%s\nenv=%s\nargs=%s\n",
			r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Test"), body,
			os.Getenv("GREETING"), strings.Join(os.Args, "|"))
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
