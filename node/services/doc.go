// Package services keeps a node's copy of the cluster's Services and
// EndpointSlices, fed by the agent's services watch
// (kyb.node.<name>.servicewatch), for the node's proxy (node/proxy) and DNS
// server (node/dns) to build from. It knows nothing of either: it hands out
// immutable snapshots and wakes subscribers when the state changes.
//
// After a broken watch the state is listed again: objects the new list no
// longer holds are dropped once its SYNCED marker arrives, so an agent that
// restarts, or that lost its stream, converges on the stored state.
package services
