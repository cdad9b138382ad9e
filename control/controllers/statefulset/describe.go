package statefulset

import (
	"fmt"

	"github.com/kybernetes/kybernetes/api"
)

// Describe returns the rollout state of s in the words of kubectl's
// `rollout status` and whether the rollout is complete. Only a
// RollingUpdate StatefulSet has a rollout to follow.
func Describe(s *api.StatefulSet) (string, bool, error) {
	if t := s.Spec.UpdateStrategy.Type; t != "" && t != api.RollingUpdateStatefulSetStrategyType {
		return "", false, fmt.Errorf("rollout status is only available for %s strategy type", api.RollingUpdateStatefulSetStrategyType)
	}
	st := s.Status
	if st.ObservedGeneration == 0 || s.Generation > st.ObservedGeneration {
		return "Waiting for statefulset spec update to be observed...", false, nil
	}
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	if st.ReadyReplicas < replicas {
		return fmt.Sprintf("Waiting for %d pods to be ready...", replicas-st.ReadyReplicas), false, nil
	}
	if p := s.Partition(); p > 0 {
		if want := replicas - p; st.UpdatedReplicas < want {
			return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", st.UpdatedReplicas, want), false, nil
		}
		return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", st.UpdatedReplicas), true, nil
	}
	if st.UpdateRevision != st.CurrentRevision {
		return fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...", st.UpdatedReplicas, st.UpdateRevision), false, nil
	}
	return fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...", st.CurrentReplicas, st.CurrentRevision), true, nil
}
