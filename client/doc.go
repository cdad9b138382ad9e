// Package client is the Go client of the kyb NATS API, used by the CLI, the
// node agent and tests: Apply, Get, List, Delete, Watch and WatchFrom,
// Logs, and PushModule, ListModules, GetModule over one *nats.Conn, through
// kyb.api.v1 alone (no JetStream, no kyb.events). Stream reads the API's
// streamed replies and resumes them where the server ended them. Error
// replies come back as *api.Status (use api.IsNotFound and friends); no
// apiserver answering is a 503 Status.
package client
