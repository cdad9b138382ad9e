// Package runtimetest is the conformance suite every runtimes.Runtime
// passes (containerd, wasm, fake): Run drives a runtime through the public
// interface only, with a test program (testprog, whose behaviour is chosen
// by its arguments; see package prog) that each runtime runs in its own
// form: a wasip1 module, a static linux binary in an image, or the fake's
// in-process interpreter.
//
// # Contract checked by the suite
//
//   - Exit code 0 ends with Reason Completed, any other with Reason Error;
//     WaitContainer and ContainerStatus agree.
//   - Env and args reach the program; argv[1:] is Command (after the
//     harness's prefix) followed by Args.
//   - stdout and stderr are appended to ContainerConfig.LogPath (the suite
//     checks that each line appears, not the file format).
//   - States go created -> running -> exited; StopContainer returns once
//     the container has exited, within grace plus a few seconds even for a
//     program that spins the CPU; Stop and Remove are idempotent.
//   - Unknown IDs yield errors wrapping runtimes.ErrNotFound (Stop and
//     Remove of unknown IDs succeed).
//   - Mounts show host directories at their container path, read-only ones
//     refusing writes.
//   - After a restart (a new instance on the same state directory) the
//     sandboxes and containers are still listed with their IDs, names,
//     labels and attempts. A container that had exited keeps its exit code
//     and reason. A container that was running is either still running
//     (Harness.SurvivesRestart, as with containerd) or, for runtimes whose
//     containers live inside the agent process (wasm, fake), reported
//     exited with a non-zero exit code and a reason other than Completed
//     (the wasm runtime uses "AgentRestarted"). A container that was
//     created and never started is reported created or exited.
//   - Several containers run at once without mixing their results.
package runtimetest
