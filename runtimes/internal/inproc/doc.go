// Package inproc is the bookkeeping shared by runtimes whose containers run
// inside the agent process (wasm, fake): sandboxes and containers, their
// states, waiting, stopping with grace, and a JSON state file per sandbox
// and container so that a new instance after an agent restart still lists
// them. Such containers cannot
// outlive the process: a container recorded as running when the state is
// loaded is reported exited with ReasonAgentRestarted.
package inproc
