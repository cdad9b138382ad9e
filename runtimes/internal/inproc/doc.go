// Package inproc is the bookkeeping shared by runtimes whose containers run
// inside the agent process (wasm, fake): sandboxes and containers, their
// states, waiting, stopping with grace, and a JSON state file per sandbox
// and container so that a new instance after an agent restart still lists
// them. Such containers cannot
// outlive the process: a container recorded as running when the state is
// loaded is reported exited with runtimes.ReasonAgentRestarted.
//
// Defence in depth: an ID only becomes the name of a state file once
// CheckID accepts it (no `/`, `\`, NUL, `.` or `..`, at most MaxIDLen
// bytes), a state file whose record's ID is not its own name is skipped
// when loading, and CreateSandbox and CreateContainer refuse (with
// runtimes.ReasonInvalidConfig) names that are not path elements, relative or `..`
// log paths and mount paths, whatever the layers above let through.
package inproc
