package node

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// evictQuietly marks a pod for deletion in the fake control plane's store,
// as the node lifecycle controller does while the node is away: the agent
// is not told (it learns of it by its next sync).
func (cp *fakeCP) evictQuietly(uid string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	p := cp.pods[uid]
	if p == nil {
		cp.t.Fatalf("evict: no pod %s", uid)
	}
	cp.rev++
	now := time.Now().UTC()
	grace := int64(1)
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	p.ResourceVersion = strconv.FormatUint(cp.rev, 10)
}

// markNotReadyQuietly sets the stored pod's Ready False, as the node
// lifecycle controller does to the pods of a silent node.
func (cp *fakeCP) markNotReadyQuietly(uid string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	p := cp.pods[uid]
	p.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionFalse, Reason: api.ReasonNodeLost})
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = false
	}
	cp.rev++
	p.ResourceVersion = strconv.FormatUint(cp.rev, 10)
}

func (cp *fakeCP) stored(uid string) *api.Pod {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if p := cp.pods[uid]; p != nil {
		c := *p
		return &c
	}
	return nil
}

// containersOf counts the runtime's containers (any state) of pod uid.
func (h *harness) containersOf(uid string) int {
	cs, err := h.fake.ListContainers(context.Background(), "")
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.Labels[LabelPodUID] == uid {
			n++
		}
	}
	return n
}

// TestReturningNodeStopsEvictedPods: while an agent is cut off from the
// control plane, one of its pods is evicted (marked for deletion, to be
// replaced elsewhere) and another one's status is marked not ready. When
// it is back, it stops the evicted pod and reports it finalized (so no
// second copy runs), and reports the other one's true status again.
func TestReturningNodeStopsEvictedPods(t *testing.T) {
	h := newHarness(t)
	h.start()
	evicted := h.cp.assign(mkpod("evicted", api.RestartPolicyAlways, "fake://run"))
	kept := h.cp.assign(mkpod("kept", api.RestartPolicyAlways, "fake://run"))
	h.cp.waitPhase(t, evicted.UID, api.PodRunning)
	testutil.Eventually(t, 5*time.Second, func() error {
		p := h.cp.stored(kept.UID)
		if r := p.Status.Condition(api.PodReady); r == nil || r.Status != api.ConditionTrue {
			return fmt.Errorf("kept not ready yet: %+v", r)
		}
		return nil
	})

	h.cp.pause(true)
	h.cp.evictQuietly(evicted.UID)
	h.cp.markNotReadyQuietly(kept.UID)
	h.cp.pause(false)
	id, err := h.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}

	testutil.Eventually(t, 10*time.Second, func() error {
		u := h.cp.last(evicted.UID)
		if u == nil || !u.Finalized {
			return fmt.Errorf("evicted pod not finalized: %+v", u)
		}
		if h.cp.stored(evicted.UID) != nil {
			return fmt.Errorf("evicted pod still stored")
		}
		if n := h.containersOf(evicted.UID); n != 0 {
			return fmt.Errorf("%d containers of the evicted pod left", n)
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		p := h.cp.stored(kept.UID)
		if r := p.Status.Condition(api.PodReady); r == nil || r.Status != api.ConditionTrue {
			return fmt.Errorf("kept pod's Ready %+v after the agent returned, want True again", r)
		}
		if !p.Status.ContainerStatuses[0].Ready {
			return fmt.Errorf("kept pod's container not ready")
		}
		return nil
	})
	if n := h.containersOf(kept.UID); n != 1 {
		t.Errorf("kept pod has %d containers, want 1", n)
	}
}

// TestRestartedAgentStopsEvictedPods: an agent that was killed (its
// containers run on) and whose pod was evicted meanwhile stops that pod
// when it starts again, instead of adopting it.
func TestRestartedAgentStopsEvictedPods(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := h.cp.assign(mkpod("evicted", api.RestartPolicyAlways, "fake://run"))
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	h.stop()
	if n := h.containersOf(p.UID); n != 1 {
		t.Fatalf("%d containers while the agent is down, want 1 still running", n)
	}
	h.cp.evictQuietly(p.UID)
	h.start()
	testutil.Eventually(t, 10*time.Second, func() error {
		if u := h.cp.last(p.UID); u == nil || !u.Finalized {
			return fmt.Errorf("evicted pod not finalized: %+v", u)
		}
		if n := h.containersOf(p.UID); n != 0 {
			return fmt.Errorf("%d containers of the evicted pod left", n)
		}
		return nil
	})
}
