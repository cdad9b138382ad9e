package daemonset

import (
	"fmt"

	"github.com/kybernetes/kybernetes/api"
)

// Describe returns the rollout state of ds in the words of kubectl's
// `rollout status` and whether the rollout is complete. Only a
// RollingUpdate DaemonSet has a rollout to follow.
func Describe(ds *api.DaemonSet) (string, bool, error) {
	if t := ds.Spec.UpdateStrategy.Type; t != "" && t != api.RollingUpdateDaemonSetStrategyType {
		return "", false, fmt.Errorf("rollout status is only available for %s strategy type", api.RollingUpdateDaemonSetStrategyType)
	}
	if ds.Generation > ds.Status.ObservedGeneration {
		return "Waiting for daemon set spec update to be observed...", false, nil
	}
	s := ds.Status
	switch {
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...", ds.Name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled), false, nil
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...", ds.Name, s.NumberAvailable, s.DesiredNumberScheduled), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out", ds.Name), true, nil
}
