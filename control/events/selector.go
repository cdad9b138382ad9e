package events

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/fields"

	"github.com/kybernetes/kybernetes/api"
)

// SelectableFields are the fields an event field selector may name, as in
// Kubernetes.
var SelectableFields = []string{
	"metadata.name", "metadata.namespace",
	"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
	"involvedObject.apiVersion", "involvedObject.fieldPath",
	"reason", "reportingComponent", "source", "type",
}

// Fields returns the selectable fields of ev.
func Fields(ev *api.Event) fields.Set {
	return fields.Set{
		"metadata.name":             ev.Name,
		"metadata.namespace":        ev.Namespace,
		"involvedObject.kind":       ev.InvolvedObject.Kind,
		"involvedObject.namespace":  ev.InvolvedObject.Namespace,
		"involvedObject.name":       ev.InvolvedObject.Name,
		"involvedObject.uid":        ev.InvolvedObject.UID,
		"involvedObject.apiVersion": ev.InvolvedObject.APIVersion,
		"involvedObject.fieldPath":  ev.InvolvedObject.FieldPath,
		"reason":                    ev.Reason,
		"reportingComponent":        ev.ReportingComponent,
		"source":                    ev.Source.Component,
		"type":                      ev.Type,
	}
}

// ParseSelector parses an event field selector ("" matches everything),
// refusing fields that are not selectable.
func ParseSelector(s string) (fields.Selector, error) {
	if s == "" {
		return fields.Everything(), nil
	}
	sel, err := fields.ParseSelector(s)
	if err != nil {
		return nil, err
	}
	for _, r := range sel.Requirements() {
		if !isSelectable(r.Field) {
			return nil, fmt.Errorf("field %q is not supported for events (use %s)", r.Field, strings.Join(SelectableFields, ", "))
		}
	}
	return sel, nil
}

func isSelectable(f string) bool {
	for _, s := range SelectableFields {
		if s == f {
			return true
		}
	}
	return false
}

// Matcher returns a function that reports whether an event matches sel.
func Matcher(sel fields.Selector) func(*api.Event) bool {
	if sel == nil || sel.Empty() {
		return nil
	}
	return func(ev *api.Event) bool { return sel.Matches(Fields(ev)) }
}
