package dashboard

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// --- workloads ----------------------------------------------------------------

func workloadSources(q query, _ *session) map[string]source {
	return map[string]source{
		"deployments": nsSource("Deployment", q),
		"replicasets": nsSource("ReplicaSet", q),
		"daemonsets":  nsSource("DaemonSet", q),
		"jobs":        nsSource("Job", q),
		"cronjobs":    nsSource("CronJob", q),
	}
}

// workloadRow is one workload with its rollout state and what the user
// may do to it.
type workloadRow struct {
	Kind, Namespace, Name, Age string
	// Desired, Current, Ready, Updated, Available: "-" when not counted.
	Desired, Current, Ready, Updated, Available string
	Rollout                                     string
	Owner                                       string
	Replicas                                    int32
	CanScale, CanRestart, CanDelete             bool
}

type workloadTable struct {
	Title, Kind string
	Rows        []workloadRow
	Problem     *problem
	Scalable    bool
}

type workloads struct {
	Tables []workloadTable
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// deploymentRollout says where a Deployment's rollout stands, as
// `kubectl rollout status` does.
func deploymentRollout(d *api.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case d.Spec.Paused:
		return "paused"
	case st.ObservedGeneration < d.Generation:
		return "waiting for the controller"
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("rolling out: %d of %d updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("rolling out: %d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("rolling out: %d of %d updated available", st.AvailableReplicas, st.UpdatedReplicas)
	}
	for _, c := range st.Conditions {
		if c.Type == api.DeploymentProgressing && c.Status == api.ConditionFalse {
			return "failed: " + c.Reason
		}
	}
	return "complete"
}

func daemonSetRollout(ds *api.DaemonSet) string {
	st := ds.Status
	switch {
	case st.ObservedGeneration < ds.Generation:
		return "waiting for the controller"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return fmt.Sprintf("rolling out: %d of %d updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return fmt.Sprintf("rolling out: %d of %d available", st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return "complete"
}

func jobState(j *api.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Status == api.ConditionTrue && (c.Type == api.JobComplete || c.Type == api.JobFailed) {
			return c.Type
		}
	}
	if j.Spec.Suspend != nil && *j.Spec.Suspend {
		return "Suspended"
	}
	return "Running"
}

func owner(m *api.ObjectMeta) string {
	for _, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return strings.ToLower(o.Kind) + "/" + o.Name
		}
	}
	return ""
}

func workloadData(ctx context.Context, s *Server, _ query, sess *session, snap snapshot) any {
	may := func(verb, kind, ns string) bool { return s.canI(ctx, sess, verb, kind, ns) }
	var w workloads

	dt := workloadTable{Title: "Deployments", Kind: "Deployment", Scalable: true, Problem: feedProblem("deployments", snap["deployments"])}
	for _, obj := range snap["deployments"].items() {
		d := obj.(*api.Deployment)
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		dt.Rows = append(dt.Rows, workloadRow{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name, Age: age(d.CreationTimestamp),
			Desired: itoa(want), Current: itoa(d.Status.Replicas), Ready: itoa(d.Status.ReadyReplicas), Updated: itoa(d.Status.UpdatedReplicas),
			Available: itoa(d.Status.AvailableReplicas), Rollout: deploymentRollout(d), Replicas: want,
			CanScale: may("update", "deployments", d.Namespace), CanRestart: may("update", "deployments", d.Namespace) && !d.Spec.Paused,
			CanDelete: may("delete", "deployments", d.Namespace)})
	}
	w.Tables = append(w.Tables, dt)

	rt := workloadTable{Title: "ReplicaSets", Kind: "ReplicaSet", Scalable: true, Problem: feedProblem("replicasets", snap["replicasets"])}
	for _, obj := range snap["replicasets"].items() {
		r := obj.(*api.ReplicaSet)
		want := int32(1)
		if r.Spec.Replicas != nil {
			want = *r.Spec.Replicas
		}
		own := owner(&r.ObjectMeta)
		rt.Rows = append(rt.Rows, workloadRow{Kind: "ReplicaSet", Namespace: r.Namespace, Name: r.Name, Age: age(r.CreationTimestamp),
			Desired: itoa(want), Current: itoa(r.Status.Replicas), Ready: itoa(r.Status.ReadyReplicas), Updated: "-",
			Available: itoa(r.Status.AvailableReplicas), Rollout: "revision " + orDefault(r.Annotations[api.AnnotationRevision], "-"),
			Owner: own, Replicas: want,
			// A controlled ReplicaSet is scaled by its Deployment; scaling
			// it by hand is undone at once (kubectl allows it; the
			// dashboard does not offer it).
			CanScale: own == "" && may("update", "replicasets", r.Namespace), CanDelete: may("delete", "replicasets", r.Namespace)})
	}
	w.Tables = append(w.Tables, rt)

	dst := workloadTable{Title: "DaemonSets", Kind: "DaemonSet", Problem: feedProblem("daemonsets", snap["daemonsets"])}
	for _, obj := range snap["daemonsets"].items() {
		ds := obj.(*api.DaemonSet)
		st := ds.Status
		dst.Rows = append(dst.Rows, workloadRow{Kind: "DaemonSet", Namespace: ds.Namespace, Name: ds.Name, Age: age(ds.CreationTimestamp),
			Desired: itoa(st.DesiredNumberScheduled), Current: itoa(st.CurrentNumberScheduled), Ready: itoa(st.NumberReady),
			Updated: itoa(st.UpdatedNumberScheduled), Available: itoa(st.NumberAvailable), Rollout: daemonSetRollout(ds),
			CanRestart: may("update", "daemonsets", ds.Namespace), CanDelete: may("delete", "daemonsets", ds.Namespace)})
	}
	w.Tables = append(w.Tables, dst)

	jt := workloadTable{Title: "Jobs", Kind: "Job", Problem: feedProblem("jobs", snap["jobs"])}
	for _, obj := range snap["jobs"].items() {
		j := obj.(*api.Job)
		want := "-"
		if j.Spec.Completions != nil {
			want = itoa(*j.Spec.Completions)
		}
		jt.Rows = append(jt.Rows, workloadRow{Kind: "Job", Namespace: j.Namespace, Name: j.Name, Age: age(j.CreationTimestamp),
			Desired: want, Current: itoa(j.Status.Active), Ready: itoa(j.Status.Succeeded), Updated: "-", Available: itoa(j.Status.Failed),
			Rollout: jobState(j), Owner: owner(&j.ObjectMeta), CanDelete: may("delete", "jobs", j.Namespace)})
	}
	w.Tables = append(w.Tables, jt)

	ct := workloadTable{Title: "CronJobs", Kind: "CronJob", Problem: feedProblem("cronjobs", snap["cronjobs"])}
	for _, obj := range snap["cronjobs"].items() {
		c := obj.(*api.CronJob)
		state := "schedule " + c.Spec.Schedule
		if c.Spec.Suspend != nil && *c.Spec.Suspend {
			state += " (suspended)"
		}
		last := "-"
		if c.Status.LastScheduleTime != nil {
			last = age(*c.Status.LastScheduleTime) + " ago"
		}
		ct.Rows = append(ct.Rows, workloadRow{Kind: "CronJob", Namespace: c.Namespace, Name: c.Name, Age: age(c.CreationTimestamp),
			Desired: "-", Current: itoa(int32(len(c.Status.Active))), Ready: "-", Updated: "-", Available: last,
			Rollout: state, CanDelete: may("delete", "cronjobs", c.Namespace)})
	}
	w.Tables = append(w.Tables, ct)
	return &w
}

// --- services -------------------------------------------------------------------

func serviceSources(q query, _ *session) map[string]source {
	return map[string]source{"services": nsSource("Service", q), "slices": nsSource("EndpointSlice", q)}
}

type serviceRow struct {
	Namespace, Name, Type, ClusterIP, Ports, Selector, Age string
	Ready, NotReady                                        int
	CanDelete                                              bool
}

type sliceRow struct {
	Namespace, Name, Service, AddressType, Ports string
	Endpoints                                    []string
}

type services struct {
	Services      []serviceRow
	Slices        []sliceRow
	Problem       *problem
	SlicesProblem *problem
}

func serviceData(ctx context.Context, s *Server, _ query, sess *session, snap snapshot) any {
	out := &services{Problem: feedProblem("services", snap["services"]), SlicesProblem: feedProblem("endpoint slices", snap["slices"])}
	type nsName struct{ ns, name string }
	ready, notReady := map[nsName]int{}, map[nsName]int{}
	for _, obj := range snap["slices"].items() {
		sl := obj.(*api.EndpointSlice)
		svc := sl.Labels[api.LabelServiceName]
		row := sliceRow{Namespace: sl.Namespace, Name: sl.Name, Service: svc, AddressType: sl.AddressType}
		var ports []string
		for _, p := range sl.Ports {
			if p.Port != nil {
				ports = append(ports, strconv.Itoa(int(*p.Port)))
			}
		}
		row.Ports = strings.Join(ports, ",")
		for _, e := range sl.Endpoints {
			ok := e.Conditions.Ready == nil || *e.Conditions.Ready
			state := "ready"
			if !ok {
				state = "not ready"
			}
			if ok {
				ready[nsName{sl.Namespace, svc}] += len(e.Addresses)
			} else {
				notReady[nsName{sl.Namespace, svc}] += len(e.Addresses)
			}
			target := ""
			if e.TargetRef != nil {
				target = " → " + strings.ToLower(e.TargetRef.Kind) + "/" + e.TargetRef.Name
			}
			row.Endpoints = append(row.Endpoints, strings.Join(e.Addresses, ",")+target+" ("+state+")")
		}
		out.Slices = append(out.Slices, row)
	}
	for _, obj := range snap["services"].items() {
		svc := obj.(*api.Service)
		var ports []string
		for _, p := range svc.Spec.Ports {
			t := strconv.Itoa(int(p.Port)) + "/" + orDefault(p.Protocol, "TCP")
			if p.NodePort != 0 {
				t = strconv.Itoa(int(p.Port)) + ":" + strconv.Itoa(int(p.NodePort)) + "/" + orDefault(p.Protocol, "TCP")
			}
			ports = append(ports, t)
		}
		k := nsName{svc.Namespace, svc.Name}
		out.Services = append(out.Services, serviceRow{Namespace: svc.Namespace, Name: svc.Name, Type: orDefault(string(svc.Spec.Type), "ClusterIP"),
			ClusterIP: orDefault(svc.Spec.ClusterIP, "-"), Ports: strings.Join(ports, ","), Selector: labelText(svc.Spec.Selector),
			Age: age(svc.CreationTimestamp), Ready: ready[k], NotReady: notReady[k], CanDelete: s.canI(ctx, sess, "delete", "services", svc.Namespace)})
	}
	return out
}

// --- nodes -----------------------------------------------------------------------

func nodeSources(query, *session) map[string]source {
	return map[string]source{"nodes": {Kind: "Node"}}
}

type nodeRow struct {
	Name, Status, Roles, Age, Version, Addresses, Runtimes, Taints string
	Capacity, Allocatable                                          string
	Conditions                                                     []nodeCondition
}

type nodeCondition struct {
	Type, Status, Reason, Message, Heartbeat string
	Bad                                      bool
}

type nodes struct {
	Rows    []nodeRow
	Problem *problem
}

func resourceText(l api.ResourceList) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		q := l[api.ResourceName(k)]
		parts[i] = k + "=" + q.String()
	}
	return strings.Join(parts, ", ")
}

func nodeData(_ context.Context, _ *Server, _ query, _ *session, snap snapshot) any {
	out := &nodes{Problem: feedProblem("nodes", snap["nodes"])}
	for _, obj := range snap["nodes"].items() {
		n := obj.(*api.Node)
		row := nodeRow{Name: n.Name, Status: "NotReady", Age: age(n.CreationTimestamp), Version: n.Status.NodeInfo.AgentVersion,
			Capacity: resourceText(n.Status.Capacity), Allocatable: resourceText(n.Status.Allocatable)}
		if n.IsReady() {
			row.Status = "Ready"
		}
		if n.Spec.Unschedulable {
			row.Status += ",SchedulingDisabled"
		}
		var addrs, rts, taints []string
		for _, a := range n.Status.Addresses {
			addrs = append(addrs, a.Type+"="+a.Address)
		}
		for _, r := range n.Status.NodeInfo.Runtimes {
			rts = append(rts, strings.TrimSuffix(r.Name+" "+r.Version, " "))
		}
		for _, t := range n.Spec.Taints {
			taints = append(taints, strings.TrimSuffix(t.Key+"="+t.Value, "=")+":"+string(t.Effect))
		}
		row.Addresses, row.Runtimes, row.Taints = strings.Join(addrs, ", "), strings.Join(rts, ", "), strings.Join(taints, ", ")
		for _, c := range n.Status.Conditions {
			bad := c.Status != api.ConditionFalse
			if c.Type == api.NodeReady {
				bad = c.Status != api.ConditionTrue
			}
			row.Conditions = append(row.Conditions, nodeCondition{Type: c.Type, Status: string(c.Status), Reason: c.Reason,
				Message: c.Message, Heartbeat: age(c.LastHeartbeatTime), Bad: bad})
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}
