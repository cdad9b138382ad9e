// Package node is the node agent (the kubelet of kybernetes). It owns
// everything that happens on one machine:
//
//   - registration: it builds the Node object from real readings of the
//     machine (capacity and allocatable, addresses, system info, the runtimes
//     whose Info answers, conditions Ready/MemoryPressure/DiskPressure/
//     PIDPressure) and registers it on kyb.node.<name>.register at start, on
//     every reconnect and whenever a heartbeat is answered NotFound; it beats
//     on kyb.node.<name>.heartbeat every HeartbeatInterval and sends its
//     status on kyb.node.<name>.status every StatusInterval or when a
//     condition or the set of usable runtimes changes;
//   - cluster configuration (clusterdns.go): before the agent starts, its
//     cluster DNS IP is resolved against the servers' service CIDR, asked
//     on kyb.node.<name>.cluster and kept in the data dir (ResolveClusterDNS);
//   - assignments: it listens on kyb.agent.<name>.pods and asks for the full
//     list of its pods on kyb.node.<name>.sync at start and on every
//     reconnect; the sync list is the truth (pods missing from it are stopped
//     and removed; updates older than what a worker has are ignored);
//   - exec and port-forward (exec.go, portforward.go): it runs the sessions
//     the control plane starts on kyb.agent.<name>.exec, in its own pods
//     only, and streams their frames back on kyb.node.<name>.exec with credit
//     flow control (api/exec.go); a session whose peer goes silent is ended
//     and its process killed;
//   - admission: every pod it is handed, by an assignment or in a sync
//     reply, is checked before anything is done for it, even though the
//     control plane checked it too (admit.go): its uid is a UUID as the
//     apiserver makes them, its namespace and name are DNS-1123 labels, its
//     spec.nodeName is this node, hostPath paths are absolute and clean,
//     mount paths hold no `..`, and api.Validate accepts it. A refused pod
//     is not started and nothing is created or removed on the host for it;
//     when it is bound here with a sane namespace, name and uid it is
//     reported Failed with reason Rejected and a message naming each field
//     at fault (and Finalized once marked for deletion), else only logged.
//     A refused update of a running pod is dropped: the pod keeps the spec
//     it was admitted with. A removal (DELETED) needs only a valid uid.
//     Every path built from pod fields goes through safeJoin, which keeps it
//     beneath the data dir, and a pod's directory is removed through an
//     os.Root on the pods directory;
//   - pod workers: one goroutine per pod, level-triggered, drives a
//     runtimes.Runtime chosen by spec.runtimeClassName: sandbox (host ports,
//     pod CIDR), images (ErrImagePull/ImagePullBackOff or the runtime's own
//     reason, with back-off), volumes (emptyDir under the data dir, hostPath),
//     init containers in order, containers with restartPolicy and an
//     exponential crash back-off (CrashLoopBackOff), image changes, graceful
//     deletion (deletionGracePeriodSeconds, else
//     terminationGracePeriodSeconds) ending in a Finalized report. A worker
//     pass observes its state, asks the pure planner (plan.go: plan(desired,
//     observed) -> actions such as CreateSandbox, Pull, Start, BackOff,
//     Kill) what to do, and executes the actions against the runtime;
//   - probes (prober.go): one prober goroutine per running container
//     attempt with probes runs the startup probe until it succeeds, then the
//     liveness and readiness probes on their periods, and reports each change
//     of result to the worker. A failed startup or liveness probe (after
//     failureThreshold) makes the planner kill the container (within the
//     probe's terminationGracePeriodSeconds, else the pod's), which restarts
//     as its restart policy and back-off say, with the probe's failure as the
//     message of its last state and Unhealthy and Killing events; the
//     readiness probe sets the container's ready flag, and with it the pod's
//     ContainersReady and Ready conditions (a container is ready once started
//     and its readiness probe passed; started once its startup probe passed).
//     exec probes go through runtimes.Execer (containerd's task exec; a new
//     instance of a wasm module with the probe's command as arguments);
//     httpGet probes through runtimes.HTTPProber when the runtime serves HTTP
//     in process (a wasm pod's WAGI handler), else to the pod's IP;
//     tcpSocket probes to the pod's IP (for a wasm pod, to the port's
//     hostPort on the node). Config.ProbeSecond scales the probes' timing
//     fields for tests;
//   - status: pod status changes go out by group commit: at once unless a
//     batch is in flight, else together in the next one, on
//     kyb.node.<name>.podstatus, only when changed; while the
//     control plane cannot be reached the latest status of each pod is kept
//     and sent at once on reconnect, alongside the new register and sync;
//   - recovery: on start, before acting, it lists every runtime's sandboxes
//     and containers, adopts those of its pods (running containers are kept
//     and watched, restart counts come from the container attempt and the
//     reported status), and removes everything else;
//   - logs: it tails each container's log file (the runtimes append to
//     ContainerConfig.LogPath under the data dir) and publishes each line on
//     kyb.logs.<namespace>.<pod>.<container> with the headers Kyb-Attempt and,
//     for CRI-format lines, Kyb-Stream and Kyb-Time.
//
// # Logs: JetStream publish, with a fallback
//
// Lines are published with JetStream async publish and a message ID, so the
// KYB_LOGS stream acknowledges every line and drops duplicates; the offset
// saved next to the log file only moves past acknowledged lines, so an agent
// restart neither loses nor resends lines. When no stream captures the
// subject (no responders), lines go out on plain NATS for live readers, the
// offset moves on, and the stream is tried again 10 s later. A running
// container's file is polled every LogPollInterval while it grows, and less
// often (down to once a second) while it is quiet, then drained once more
// after the container exits.
//
// # Using it
//
//	nc, _ := nats.Connect(url, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
//	a, err := node.New(node.Config{DataDir: dir}, nc, map[string]runtimes.Runtime{
//		api.RuntimeWasm: wasmRuntime, api.RuntimeContainerd: containerdRuntime,
//	}, log)
//	err = a.Run(ctx) // nil when ctx ends; pods keep running
//
// The agent does not own the connection and never touches KV. Pods keep
// running while the connection is down, and when Run returns. Its NATS
// permissions: publish kyb.node.<name>.> and kyb.logs.>, subscribe
// kyb.agent.<name>.> and its inbox (request replies and JetStream acks).
package node
