package replicaset

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var (
	podKind        = api.KindOf(&api.Pod{})
	nodeKind       = api.KindOf(&api.Node{})
	replicaSetKind = api.KindOf(&api.ReplicaSet{})
)

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(p *api.Pod) bool {
	c := p.Status.Condition(api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

// IsPodAvailable reports whether the pod has been Ready for at least
// minReadySeconds at now, and if not but it is Ready, how long until it
// is (0 otherwise).
func IsPodAvailable(p *api.Pod, minReadySeconds int32, now time.Time) (bool, time.Duration) {
	c := p.Status.Condition(api.PodReady)
	if c == nil || c.Status != api.ConditionTrue {
		return false, 0
	}
	if minReadySeconds <= 0 {
		return true, 0
	}
	since := c.LastTransitionTime
	if since.IsZero() {
		return true, 0
	}
	left := since.Add(time.Duration(minReadySeconds) * time.Second).Sub(now)
	if left <= 0 {
		return true, 0
	}
	return false, left
}

// IsPodActive reports whether the pod counts toward a workload's replicas:
// not being deleted and not finished.
func IsPodActive(p *api.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed
}

// NodeExists reports whether node name exists (by the store).
type NodeExists func(ctx context.Context, name string) bool

// StoreNodeExists asks st whether a node exists.
func StoreNodeExists(st *store.Store) NodeExists {
	return func(ctx context.Context, name string) bool {
		if name == "" {
			return false
		}
		_, err := st.Get(ctx, nodeKind, "", name)
		return !api.IsNotFound(err)
	}
}

// DeletePod deletes the pod (namespace/name, only while its uid is uid) as
// the apiserver does: at once when no agent runs it (unbound, or its node
// is gone), else by marking it for graceful deletion with its grace period
// (defaultGrace when it names none). A pod already gone, or replaced by
// another of the name, is not an error. Each write is a compare-and-set on
// a fresh read. Safe for concurrent use.
func DeletePod(ctx context.Context, st *store.Store, nodeExists NodeExists, namespace, name, uid string, defaultGrace time.Duration) error {
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, namespace, name)
		if err != nil {
			return err
		}
		pod := obj.(*api.Pod)
		if uid != "" && pod.UID != uid {
			return nil
		}
		if !nodeExists(ctx, pod.Spec.NodeName) {
			_, err := st.Delete(ctx, podKind, namespace, name, pod.ResourceVersion)
			return err
		}
		if pod.DeletionTimestamp != nil {
			return nil
		}
		g := int64(defaultGrace / time.Second)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			g = *pod.Spec.TerminationGracePeriodSeconds
		}
		now := time.Now().UTC().Truncate(time.Second)
		pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = &now, &g
		return st.Update(ctx, pod)
	})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("delete pod %s/%s: %w", namespace, name, err)
	}
	return nil
}

// maxPodNameLen is the longest pod name (a DNS-1123 label).
const maxPodNameLen = 63

const nameChars = "bcdfghjklmnpqrstvwxz2456789"

// PodName returns a new name for a pod of the workload named prefix: the
// prefix (dots turned into dashes, cut to fit) and five random characters,
// as Kubernetes' generateName.
func PodName(prefix string) string {
	p := strings.ReplaceAll(prefix, ".", "-")
	if len(p) > maxPodNameLen-6 {
		p = p[:maxPodNameLen-6]
	}
	p = strings.TrimRight(p, "-")
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = nameChars[int(b[i])%len(nameChars)]
	}
	return p + "-" + string(b)
}

// podRank orders pods for deletion: those to delete first sort first, as
// Kubernetes' ActivePods ordering: unscheduled before scheduled, Pending
// before Unknown before Running, not ready before ready, ready for less
// time before longer, more restarts before fewer, newer before older.
func podLess(a, b *api.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	phase := map[api.PodPhase]int{api.PodPending: 0, api.PodUnknown: 1, api.PodRunning: 2}
	if pa, pb := phase[a.Status.Phase], phase[b.Status.Phase]; pa != pb {
		return pa < pb
	}
	ra, rb := IsPodReady(a), IsPodReady(b)
	if ra != rb {
		return !ra
	}
	if ra && rb {
		ta, tb := readySince(a), readySince(b)
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
	}
	if ca, cb := restarts(a), restarts(b); ca != cb {
		return ca > cb
	}
	if !a.CreationTimestamp.Equal(b.CreationTimestamp) {
		return a.CreationTimestamp.After(b.CreationTimestamp)
	}
	return a.Name > b.Name
}

func readySince(p *api.Pod) time.Time {
	if c := p.Status.Condition(api.PodReady); c != nil {
		return c.LastTransitionTime
	}
	return time.Time{}
}

func restarts(p *api.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}
