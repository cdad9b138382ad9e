// Package node is the node agent (the kubelet of kybernetes). It owns
// everything that happens on one machine:
//
//   - registration: it builds the Node object from real readings of the
//     machine (capacity, addresses, system info, the runtimes that answer
//     Info, conditions) and registers it on kyb.node.<name>.register at start
//     and on every reconnect, then beats on kyb.node.<name>.heartbeat and
//     re-sends its status on kyb.node.<name>.status;
//   - assignments: it listens on kyb.agent.<name>.pods and asks for the full
//     list of its pods on kyb.node.<name>.sync at start and on every
//     reconnect; the sync list is the truth;
//   - pod workers: one goroutine per pod drives a runtimes.Runtime
//     (chosen by spec.runtimeClassName) until the actual state matches the
//     desired one: images, sandbox, volumes, containers, restarts with
//     back-off, graceful deletion;
//   - status: pod status changes are coalesced into batches on
//     kyb.node.<name>.podstatus; while the connection is down the latest
//     status of each pod is kept and sent on reconnect;
//   - recovery: on start it adopts what the runtimes still run for its pods
//     and removes what no longer belongs to it;
//   - logs: it tails each container's log file and publishes the lines on
//     kyb.logs.<namespace>.<pod>.<container>.
//
// The agent never touches KV; it speaks only the node protocol of api/wire.go.
// Pods keep running while the NATS connection is down.
package node
