// Package events keeps the cluster's Events (api.Event) in the JetStream
// stream api.EventsStream, and is the only package that touches it.
//
// Each event is one subject, kyb.eventlog.<namespace>.<object key>.<event
// key>, holding one message (MaxMsgsPerSubject 1): recording a repeat
// replaces the event with its count one higher, by compare-and-set on the
// subject's last sequence, so no reader ever sees two copies of one event.
// Limits: an age (Config.MaxAge, default 24h), a total size, and a number of
// events per involved object (Config.MaxPerObject, default 100; the oldest
// goes when a new one comes). An event's resourceVersion is its stream
// sequence; a watch resumes after it.
package events
