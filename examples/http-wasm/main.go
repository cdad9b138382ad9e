// Command http-wasm is an HTTP handler for WASI, served the CGI way (WAGI):
// the wasm runtime instantiates it once per request, with the request in the
// CGI environment and stdin, and reads the response from stdout.
package main

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
)

func main() {
	err := cgi.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		name := r.URL.Query().Get("name")
		if name == "" {
			name = "world"
		}
		fmt.Fprintf(w, "hello, %s, from wasm (%s %s)\n", name, r.Method, r.URL.Path)
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgi:", err)
		os.Exit(1)
	}
}
