// Package fake is a programmable in-memory runtimes.Runtime for the layers
// above the runtimes (node agent, hollow nodes in load tests). Its "images"
// are tiny scripts run in goroutines, so lifecycles take milliseconds:
//
//	fake://exit/N       exit with code N at once
//	fake://run          run until stopped, then exit 0 (a well-behaved server)
//	fake://sleep/DUR    sleep DUR (a Go duration), exit 0; stop exits 0 early
//	fake://hang         ignore the stop request; killed after the grace (137)
//	fake://oom          end at once with exit 137 and reason OOMKilled
//	fake://prog         run the conformance test program's verbs (package
//	                    runtimetest/prog) from Command and Args, with env,
//	                    mounts (mapped to host paths) and logs
//	fake://pullerror    EnsureImage and CreateContainer fail: ErrImagePull,
//	                    retryable
//	fake://invalid      they fail with InvalidImageName, not retryable
//
// Any other reference runs like fake://run. Every container writes
// "fake: <name> started" to its log first (fake://prog excepted).
//
// Errors can be injected per method with Hooks (as Nomad's MockDriver does),
// Exit ends a running container with a chosen code and reason (a crash or an
// OOM kill mid-run), and Calls records the calls made, for assertions. State is kept in memory
// and, when Config.StateDir is set, in one file per sandbox and container
// so that a new instance on the same directory lists the previous
// containers (running ones as exited with reason AgentRestarted). Hollow
// nodes should leave StateDir empty: every change writes a file. An empty
// LogPath discards the output. As the in-process runtimes do, it refuses
// sandbox and container names, uids and paths that could reach outside their
// directories (reason InvalidConfig), so that the agent's tests meet a
// runtime as strict as the real ones.
package fake
