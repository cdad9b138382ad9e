// Package examples holds manifests and workload sources a user can run
// against `kyb up`: hello-wasm (a Go wasip1 program), http-wasm (a Go
// net/http/cgi handler served the WAGI way) and wat-answer (a hand-written
// WAT module); batch-wasm is a Job that runs hello-wasm 20 times, 5 at
// once; counter-wasm is a StatefulSet whose pods count their starts on
// their own persistent volume claims. `go tool task examples` builds them.
// monitoring/ holds a Prometheus scrape config and a Grafana dashboard
// (docs/metrics.md), suffixed .example so that `kyb apply -R -f examples/`
// does not read them.
package examples
