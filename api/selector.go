package api

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// The workload kinds' shared types. The deployments branch defines the
// same types (identically) in api/apps.go; when both are merged, one copy
// goes.

// LabelSelector selects objects by their labels, as Kubernetes'
// metav1.LabelSelector: every matchLabels pair and every matchExpressions
// requirement must hold. An empty selector selects everything (and is
// refused by validation where it would adopt foreign pods).
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one requirement of a LabelSelector.
type LabelSelectorRequirement struct {
	Key string `json:"key"`
	// Operator is In, NotIn, Exists or DoesNotExist.
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Label selector operators.
const (
	LabelSelectorOpIn           = "In"
	LabelSelectorOpNotIn        = "NotIn"
	LabelSelectorOpExists       = "Exists"
	LabelSelectorOpDoesNotExist = "DoesNotExist"
)

// Selector converts s to a labels.Selector. A nil s selects nothing; an
// empty one everything. It fails on an unknown operator or bad values.
func (s *LabelSelector) Selector() (labels.Selector, error) {
	if s == nil {
		return labels.Nothing(), nil
	}
	sel := labels.NewSelector()
	for _, k := range sortedKeys(s.MatchLabels) {
		r, err := labels.NewRequirement(k, selection.Equals, []string{s.MatchLabels[k]})
		if err != nil {
			return nil, err
		}
		sel = sel.Add(*r)
	}
	for _, e := range s.MatchExpressions {
		var op selection.Operator
		switch e.Operator {
		case LabelSelectorOpIn:
			op = selection.In
		case LabelSelectorOpNotIn:
			op = selection.NotIn
		case LabelSelectorOpExists:
			op = selection.Exists
		case LabelSelectorOpDoesNotExist:
			op = selection.DoesNotExist
		default:
			return nil, fmt.Errorf("%q is not a valid label selector operator", e.Operator)
		}
		r, err := labels.NewRequirement(e.Key, op, e.Values)
		if err != nil {
			return nil, err
		}
		sel = sel.Add(*r)
	}
	return sel, nil
}

// PodTemplateSpec is the pod a workload creates: metadata (labels,
// annotations) and spec.
type PodTemplateSpec struct {
	ObjectMeta `json:"metadata,omitzero"`
	Spec       PodSpec `json:"spec"`
}
