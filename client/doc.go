// Package client is the Go client of the kyb NATS API, used by the CLI, the
// node agent and tests: Apply, Get, List, Delete and Watch over one
// *nats.Conn. Error replies come back as *api.Status (use api.IsNotFound and
// friends); no apiserver answering is a 503 Status.
package client
