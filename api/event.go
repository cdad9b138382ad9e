package api

import (
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Event is Kubernetes' v1 Event: something that happened to one object (a
// pod was scheduled, an image pulled, a container killed), for people to
// read with `kyb get events` and `kyb describe`. Events are not stored in
// the objects bucket but in the stream EventsStream, with an age limit and
// a limit per involved object; they are recorded by the cluster's
// components (internal/record), never applied. Repeats of one event (same
// involved object, type, reason, message and source) are one Event whose
// Count grows and whose LastTimestamp moves.
//
// Its name is "<involvedObject.name>.<16 hex digits>", fixed for the
// repeats of one event; its resourceVersion is its sequence in the stream.
type Event struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// InvolvedObject is the object the event is about.
	InvolvedObject ObjectReference `json:"involvedObject"`
	// Reason is a short CamelCase word: Scheduled, FailedScheduling,
	// Pulling, Pulled, Started, Failed, BackOff, Killing, ...
	Reason string `json:"reason,omitempty"`
	// Message is what happened, for people (at most MaxEventMessage bytes).
	Message string `json:"message,omitempty"`
	// Source is the component (and node) that saw it.
	Source EventSource `json:"source,omitzero"`
	// FirstTimestamp is when the event happened first, LastTimestamp when
	// most recently; Count how often.
	FirstTimestamp time.Time `json:"firstTimestamp,omitzero"`
	LastTimestamp  time.Time `json:"lastTimestamp,omitzero"`
	Count          int32     `json:"count,omitempty"`
	// Type is EventTypeNormal or EventTypeWarning.
	Type string `json:"type,omitempty"`
	// ReportingComponent is the component that recorded it (kubelet,
	// default-scheduler, ...), as Source.Component.
	ReportingComponent string `json:"reportingComponent,omitempty"`
	// ReportingInstance is the instance of that component (the node name
	// for the kubelet).
	ReportingInstance string `json:"reportingInstance,omitempty"`
}

// ObjectReference points at one object, as Kubernetes' v1 ObjectReference.
// FieldPath names a part of it: "spec.containers{web}".
type ObjectReference struct {
	Kind            string `json:"kind,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	FieldPath       string `json:"fieldPath,omitempty"`
}

// EventSource is the component, and the node for a node's agent, that saw
// an event.
type EventSource struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

// Components that record events.
const (
	// ComponentKubelet is the node agent, as Kubernetes names it.
	ComponentKubelet = "kubelet"
	// ComponentScheduler is the scheduler.
	ComponentScheduler = "default-scheduler"
	// ComponentNodeController is the node lifecycle controller (node
	// readiness, taints, evictions), as Kubernetes names it.
	ComponentNodeController = "node-controller"
)

// Limits of an Event's fields.
const (
	// MaxEventMessage bounds Message (Kubernetes' events.k8s.io note is
	// 1 kB); internal/record truncates longer messages.
	MaxEventMessage = 1024
	// MaxEventReason bounds Reason (Kubernetes' 128).
	MaxEventReason = 128
	// MaxEventComponent bounds Source.Component and ReportingComponent.
	MaxEventComponent = 128
	// maxEventUID bounds a UID and a field path.
	maxEventRef = 253
)

// RefTo returns the reference to obj that an Event names as its
// involvedObject.
func RefTo(obj Object) ObjectReference {
	k := KindOf(obj)
	m := obj.GetObjectMeta()
	ref := ObjectReference{Kind: k.Name, Name: m.Name, UID: m.UID, APIVersion: k.APIVersions[0]}
	if k.Namespaced {
		ref.Namespace = m.Namespace
	}
	return ref
}

// EventNamespace is the namespace an event about ref lives in: the
// object's own, or "default" for a cluster-scoped object (as in Kubernetes).
func EventNamespace(ref ObjectReference) string {
	if ref.Namespace == "" {
		return DefaultNamespace
	}
	return ref.Namespace
}

// ValidateEvent checks an event as recorded: an involved object of a known
// kind with a valid name and namespace, a type, a reason, a message and a
// source within their limits, a positive count. It returns nil or a 422
// *Status naming every problem by its field path (never echoing a long
// value). It is safe for concurrent use as long as ev is not being changed.
func ValidateEvent(ev *Event) error {
	var e errs
	p := field.NewPath("involvedObject")
	ref := &ev.InvolvedObject
	k, err := LookupKind(ref.Kind)
	switch {
	case ref.Kind == "":
		e.required(p.Child("kind"))
	case len(ref.Kind) > 63 || err != nil:
		e.add(p.Child("kind"), "unknown kind")
	}
	switch {
	case ref.Name == "":
		e.required(p.Child("name"))
	case k != nil:
		for _, m := range ValidateName(k, ref.Name) {
			e.add(p.Child("name"), "%s", m)
		}
	}
	if k != nil && k.Namespaced && ref.Namespace == "" {
		e.required(p.Child("namespace"))
	}
	if ref.Namespace != "" {
		for _, m := range validation.IsDNS1123Label(ref.Namespace) {
			e.add(p.Child("namespace"), "%s", m)
		}
	}
	if len(ref.UID) > maxEventRef {
		e.add(p.Child("uid"), "must be no more than %d bytes", maxEventRef)
	}
	if len(ref.FieldPath) > maxEventRef {
		e.add(p.Child("fieldPath"), "must be no more than %d bytes", maxEventRef)
	}
	if len(ref.APIVersion) > 63 || len(ref.ResourceVersion) > 63 {
		e.add(p, "apiVersion and resourceVersion must be no more than 63 bytes")
	}
	switch ev.Type {
	case EventTypeNormal, EventTypeWarning:
	case "":
		e.required(field.NewPath("type"))
	default:
		e.add(field.NewPath("type"), "unsupported value: supported values: %q, %q", EventTypeNormal, EventTypeWarning)
	}
	switch {
	case ev.Reason == "":
		e.required(field.NewPath("reason"))
	case len(ev.Reason) > MaxEventReason:
		e.add(field.NewPath("reason"), "must be no more than %d bytes", MaxEventReason)
	}
	if len(ev.Message) > MaxEventMessage {
		e.add(field.NewPath("message"), "must be no more than %d bytes", MaxEventMessage)
	}
	switch {
	case ev.Source.Component == "":
		e.required(field.NewPath("source", "component"))
	case len(ev.Source.Component) > MaxEventComponent:
		e.add(field.NewPath("source", "component"), "must be no more than %d bytes", MaxEventComponent)
	}
	if len(ev.Source.Host) > maxEventRef {
		e.add(field.NewPath("source", "host"), "must be no more than %d bytes", maxEventRef)
	}
	if len(ev.ReportingComponent) > MaxEventComponent || len(ev.ReportingInstance) > maxEventRef {
		e.add(field.NewPath("reportingComponent"), "reportingComponent and reportingInstance must be no more than %d and %d bytes", MaxEventComponent, maxEventRef)
	}
	if ev.Count < 0 {
		e.add(field.NewPath("count"), "must not be negative")
	}
	name := ref.Name
	if len(name) > 63 {
		name = name[:63] + "..."
	}
	return e.status("Event", name)
}

// Event reasons recorded by the scheduler and the node agent, as Kubernetes
// spells them.
const (
	ReasonScheduled        = "Scheduled"
	ReasonFailedScheduling = "FailedScheduling"
	ReasonPulling          = "Pulling"
	ReasonPulled           = "Pulled"
	ReasonStarted          = "Started"
	ReasonFailed           = "Failed"
	ReasonBackOff          = "BackOff"
	ReasonKilling          = "Killing"
	// ReasonNodeNotReady is recorded on each pod of a node that stopped
	// posting status, when its Ready condition turns False.
	ReasonNodeNotReady = "NodeNotReady"
	// ReasonTaintManagerEviction is recorded on a pod marked for deletion
	// because its node has a NoExecute taint it does not tolerate (any
	// longer).
	ReasonTaintManagerEviction = "TaintManagerEviction"
)
