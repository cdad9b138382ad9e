// Package examples holds manifests and workload sources a user can run
// against `kyb up`: hello-wasm (a Go wasip1 program), http-wasm (a Go
// net/http/cgi handler served the WAGI way) and wat-answer (a hand-written
// WAT module). `go tool task examples` builds them.
package examples
