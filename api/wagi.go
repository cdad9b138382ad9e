package api

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// AnnotationWAGIMaxConcurrency on a wasm pod (or a workload's pod template)
// caps the requests its WAGI handler runs at once, in place of the node's
// default (the agent's --wagi-max-concurrency); requests beyond it wait
// briefly in a bounded queue, then get 503 with Retry-After.
const AnnotationWAGIMaxConcurrency = "kyb.dev/wagi-max-concurrency"

// MaxWAGIConcurrency is the largest value of AnnotationWAGIMaxConcurrency.
const MaxWAGIConcurrency = 1024

// WAGIMaxConcurrency returns a pod's AnnotationWAGIMaxConcurrency, 0 when
// unset or invalid (validation refuses an invalid one).
func WAGIMaxConcurrency(annotations map[string]string) int {
	n, err := strconv.Atoi(annotations[AnnotationWAGIMaxConcurrency])
	if err != nil || n < 1 || n > MaxWAGIConcurrency {
		return 0
	}
	return n
}

// validatePodAnnotations checks the annotations kybernetes acts on: the
// WAGI cap is a whole number from 1 to MaxWAGIConcurrency, on wasm pods
// only (a container pod has no WAGI handler: it would change nothing).
func validatePodAnnotations(e *errs, annotations map[string]string, s *PodSpec, p *field.Path) {
	v, ok := annotations[AnnotationWAGIMaxConcurrency]
	if !ok {
		return
	}
	ap := p.Key(AnnotationWAGIMaxConcurrency)
	if s.RuntimeClass() != RuntimeWasm {
		e.add(ap, "only a wasm pod (runtimeClassName: wasm) serves WAGI")
		return
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > MaxWAGIConcurrency {
		e.add(ap, "must be a whole number from 1 to %d, not %q", MaxWAGIConcurrency, clip(v))
	}
}
