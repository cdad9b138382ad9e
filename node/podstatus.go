// The pod status a worker reports: its containers' states, conditions and
// phase, computed from what the runtime and the probes say.

package node

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// exitOf is how an exited container ended, as its status says.
func exitOf(st *runtimes.ContainerStatus) runtimes.ExitResult {
	return runtimes.ExitResult{ExitCode: st.ExitCode, Reason: st.Reason, Message: st.Message, FinishedAt: st.FinishedAt.UTC()}
}

// reasonOrByCode is res's reason or, when it has none, Completed for exit
// code 0 and Failed for any other.
func reasonOrByCode(res runtimes.ExitResult) string {
	switch {
	case res.Reason != "":
		return res.Reason
	case res.ExitCode == 0:
		return runtimes.ReasonCompleted
	}
	return runtimes.ReasonFailed
}

func (w *podWorker) terminated(c *ctr) *api.ContainerStateTerminated {
	if c.exit == nil {
		return nil
	}
	return &api.ContainerStateTerminated{
		ExitCode:    c.exit.ExitCode,
		Reason:      c.exit.Reason,
		Message:     c.exit.Message,
		StartedAt:   c.startedAt.Truncate(time.Second),
		FinishedAt:  c.exit.FinishedAt.Truncate(time.Second),
		ContainerID: w.containerID(c.id),
	}
}

func (w *podWorker) containerID(id string) string {
	if id == "" {
		return ""
	}
	return w.rtName + "://" + id
}

// computeStatus derives the pod status from the worker's state, keeping
// transition times of unchanged conditions.
func (w *podWorker) computeStatus(pod *api.Pod) api.PodStatus {
	if w.frozen {
		return w.status
	}
	prev := w.status
	st := api.PodStatus{
		HostIP:             w.a.nodeIP,
		StartTime:          w.startTime,
		ObservedGeneration: pod.Generation,
	}
	if w.sandbox != nil || w.failReason != "" || prev.PodIP != "" {
		ip := w.a.nodeIP
		if w.sandbox != nil && w.sandbox.IP != "" {
			ip = w.sandbox.IP
		} else if w.sandbox == nil && prev.PodIP != "" {
			ip = prev.PodIP
		}
		st.PodIP, st.PodIPs = ip, []api.PodIP{{IP: ip}}
	}
	initsDone := true
	for _, c := range w.inits {
		if c.exit == nil || c.exit.ExitCode != 0 {
			initsDone = false
		}
	}
	var initStatuses []api.ContainerStatus
	for _, c := range w.inits {
		initStatuses = append(initStatuses, w.containerStatus(c, runtimes.ReasonPodInitializing))
	}
	waitDefault := runtimes.ReasonContainerCreating
	if !initsDone {
		waitDefault = runtimes.ReasonPodInitializing
	}
	allReady := true
	for _, c := range w.ctrs {
		cs := w.containerStatus(c, waitDefault)
		if !cs.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	st.InitContainerStatuses = initStatuses

	st.Phase = podPhase(pod.Spec.RestartPolicy, st.ContainerStatuses, initsDone, w.initFailed)
	w.observeStart()
	for _, c := range w.all() {
		if c.respec && (st.Phase == api.PodSucceeded || st.Phase == api.PodFailed) {
			st.Phase = api.PodPending // a container waits to start with its new image
		}
	}
	if w.failReason != "" {
		st.Phase, st.Reason, st.Message = api.PodFailed, w.failReason, w.failMsg
	}
	if w.initFailed {
		st.Reason, st.Message = "InitContainerFailed", "an init container failed and restartPolicy is Never"
	}
	now := time.Now().UTC().Truncate(time.Second)
	cond := func(typ string, ok bool, reason string) {
		s := api.ConditionFalse
		if ok {
			s = api.ConditionTrue
			reason = ""
		}
		c := api.PodCondition{Type: typ, Status: s, Reason: reason}
		if old := prev.Condition(typ); old != nil && old.Status == s {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		st.Conditions = append(st.Conditions, c)
	}
	if sc := pod.Status.Condition(api.PodScheduled); sc != nil {
		st.Conditions = append(st.Conditions, *sc)
	} else {
		cond(api.PodScheduled, true, "")
	}
	cond(api.PodInitialized, initsDone, "ContainersNotInitialized")
	ready := allReady && len(w.ctrs) > 0 && pod.DeletionTimestamp == nil
	notReady := "ContainersNotReady"
	if st.Phase == api.PodSucceeded || st.Phase == api.PodFailed {
		notReady = "PodCompleted"
	}
	cond(api.ContainersReady, ready, notReady)
	cond(api.PodReady, ready, notReady)
	if !ready && notReady == "ContainersNotReady" {
		// As Kubernetes: name the containers that are not ready.
		var unready []string
		for _, cs := range st.ContainerStatuses {
			if !cs.Ready {
				unready = append(unready, cs.Name)
			}
		}
		if len(unready) > 0 {
			msg := "containers with unready status: [" + strings.Join(unready, " ") + "]"
			n := len(st.Conditions)
			st.Conditions[n-2].Message, st.Conditions[n-1].Message = msg, msg
		}
	}
	w.status = st
	return st
}

// containerStatus is the API view of one container.
func (w *podWorker) containerStatus(c *ctr, waitDefault string) api.ContainerStatus {
	cs := api.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      c.imageRef,
		RestartCount: c.restarts,
		ContainerID:  w.containerID(c.id),
	}
	// As Kubernetes: started once the startup probe succeeded (at once
	// without one); ready once started and the readiness probe says so
	// (at once without one).
	started := c.running && (c.spec.StartupProbe == nil || c.startupOK)
	cs.Started = &started
	if c.lastTerm != nil {
		lt := *c.lastTerm
		cs.LastState.Terminated = &lt
	}
	switch {
	case c.running:
		cs.State.Running = &api.ContainerStateRunning{StartedAt: c.startedAt.Truncate(time.Second)}
		cs.Ready = started && (c.spec.ReadinessProbe == nil || c.readyOK)
	case c.exit != nil && (c.waitR == runtimes.ReasonCrashLoopBackOff || c.respec):
		r := c.waitR
		if r == "" {
			r = runtimes.ReasonContainerCreating
		}
		cs.State.Waiting = &api.ContainerStateWaiting{Reason: r, Message: c.waitM}
		cs.LastState.Terminated = w.terminated(c)
	case c.exit != nil:
		cs.State.Terminated = w.terminated(c)
	case c.waitR != "":
		cs.State.Waiting = &api.ContainerStateWaiting{Reason: c.waitR, Message: c.waitM}
	default:
		cs.State.Waiting = &api.ContainerStateWaiting{Reason: waitDefault}
	}
	return cs
}

// podPhase follows Kubernetes' rules (kubelet getPhase).
func podPhase(policy api.RestartPolicy, cs []api.ContainerStatus, initsDone, initFailed bool) api.PodPhase {
	if initFailed {
		return api.PodFailed
	}
	if !initsDone {
		return api.PodPending
	}
	var pending, running, stopped, succeeded int
	for _, c := range cs {
		switch {
		case c.State.Running != nil:
			running++
		case c.State.Terminated != nil:
			stopped++
			if c.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case c.State.Waiting != nil && c.LastState.Terminated != nil:
			stopped++ // restarting after a crash
		default:
			pending++
		}
	}
	switch {
	case pending > 0:
		return api.PodPending
	case running > 0:
		return api.PodRunning
	case stopped == len(cs) && len(cs) > 0:
		switch policy {
		case api.RestartPolicyNever:
			if succeeded == stopped {
				return api.PodSucceeded
			}
			return api.PodFailed
		case api.RestartPolicyOnFailure:
			if succeeded == stopped {
				return api.PodSucceeded
			}
			return api.PodRunning
		}
		return api.PodRunning
	}
	return api.PodPending
}

// report queues the current status when it changed since the last report.
func (w *podWorker) report(pod *api.Pod, finalized bool) {
	st := w.computeStatus(pod)
	u := &api.PodStatusUpdate{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, Status: st, Finalized: finalized}
	b, err := json.Marshal(u)
	if err != nil {
		return
	}
	if bytes.Equal(b, w.lastSent) {
		return
	}
	w.lastSent = b
	w.a.reporter.put(u)
}
