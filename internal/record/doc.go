// Package record is the one way the cluster's components record Events
// (api.Event): the scheduler, the node agent and the controllers each hold
// a Recorder, which folds repeats of an event (same involved object, type,
// reason, message and source) into one Event whose count grows, as
// client-go's event correlator does, and hands each to a Sink off the
// caller's goroutine. Recording never blocks and never fails the caller:
// an event is a record for people, not state.
//
// The sinks: the control plane writes into the events stream directly
// (control/events.Store); a node agent sends each event through its node
// verb kyb.node.<name>.events, where the apiserver checks that the pod is
// bound to that node before it stores it.
package record
