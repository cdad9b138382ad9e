package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

func newDescribeCmd(g *globals) *cobra.Command {
	var ns string
	cmd := &cobra.Command{
		Use:   "describe (pod|node|service|role|clusterrole|rolebinding|clusterrolebinding) NAME | TYPE/NAME",
		Short: "Show an object in detail: for a pod its containers, conditions and why it is pending; for a node its capacity, allocations and pods",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			if len(refs) != 1 {
				return fmt.Errorf("describe: want KIND NAME or TYPE/NAME, not %q", strings.Join(args, " "))
			}
			kind := refs[0].kind
			args = []string{args[0], refs[0].name}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := g.reqCtx(cmd.Context())
			defer cancel()
			obj, err := c.Get(ctx, kind.Name, orDefault("", ns, kind), args[1])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			defer w.Flush()
			switch o := obj.(type) {
			case *api.Pod:
				describePod(w, o)
				describeEventsOf(ctx, w, c, o)
			case *api.Node:
				objs, _, err := c.List(ctx, api.ListRequest{Kind: "Pod", AllNamespaces: true, FieldSelector: "spec.nodeName=" + o.Name})
				if err != nil {
					return fmt.Errorf("list pods of node %s: %w", o.Name, err)
				}
				describeNode(w, o, objs)
				describeEventsOf(ctx, w, c, o)
			case *api.Service:
				sl, _, err := c.List(ctx, api.ListRequest{Kind: "EndpointSlice", Namespace: o.Namespace, LabelSelector: api.LabelServiceName + "=" + o.Name})
				if err != nil {
					return fmt.Errorf("list endpointslices of service %s: %w", o.Name, err)
				}
				describeService(w, o, sl)
				describeEventsOf(ctx, w, c, o)
			case *api.Role:
				describeRole(w, &o.ObjectMeta, o.Rules)
			case *api.ClusterRole:
				describeRole(w, &o.ObjectMeta, o.Rules)
			case *api.RoleBinding:
				describeBinding(w, &o.ObjectMeta, o.RoleRef, o.Subjects)
			case *api.ClusterRoleBinding:
				describeBinding(w, &o.ObjectMeta, o.RoleRef, o.Subjects)
			default:
				if err := describeAny(w, obj); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func kv(w io.Writer, k string, v any) { fmt.Fprintf(w, "%s:\t%v\n", k, v) }

func mapText(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, "\n\t")
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "<unset>"
	}
	return t.Local().Format(time.RFC1123Z)
}

func describePod(w io.Writer, p *api.Pod) {
	kv(w, "Name", p.Name)
	kv(w, "Namespace", p.Namespace)
	kv(w, "Runtime", p.Spec.RuntimeClass())
	node := orNone(p.Spec.NodeName)
	if p.Status.HostIP != "" {
		node += "/" + p.Status.HostIP
	}
	kv(w, "Node", node)
	if p.Status.StartTime != nil {
		kv(w, "Start Time", timeText(*p.Status.StartTime))
	}
	kv(w, "Labels", mapText(p.Labels))
	kv(w, "Annotations", mapText(p.Annotations))
	kv(w, "Status", podStatusText(p))
	if p.Status.Reason != "" {
		kv(w, "Reason", p.Status.Reason)
	}
	if p.Status.Message != "" {
		kv(w, "Message", p.Status.Message)
	}
	kv(w, "IP", orNone(p.Status.PodIP))
	if len(p.Spec.InitContainers) > 0 {
		describeContainers(w, "Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	describeContainers(w, "Containers", p.Spec.Containers, p.Status.ContainerStatuses)
	if len(p.Status.Conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		fmt.Fprintln(w, "  Type\tStatus\tReason\tMessage")
		for _, c := range p.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	if len(p.Spec.NodeSelector) > 0 {
		kv(w, "Node-Selectors", mapText(p.Spec.NodeSelector))
	}
	if len(p.Spec.Tolerations) > 0 {
		var ts []string
		for _, t := range p.Spec.Tolerations {
			ts = append(ts, fmt.Sprintf("%s %s %s:%s", t.Key, t.Operator, t.Value, t.Effect))
		}
		kv(w, "Tolerations", strings.Join(ts, "\n\t"))
	}
}

// describeContainers prints a pod's containers (or init containers) with
// their states.
func describeContainers(w io.Writer, title string, containers []api.Container, statusList []api.ContainerStatus) {
	fmt.Fprintf(w, "%s:\n", title)
	statuses := map[string]api.ContainerStatus{}
	for _, cs := range statusList {
		statuses[cs.Name] = cs
	}
	for _, c := range containers {
		fmt.Fprintf(w, "  %s:\n", c.Name)
		fmt.Fprintf(w, "    Image:\t%s\n", c.Image)
		cs, ok := statuses[c.Name]
		if ok && cs.ImageID != "" {
			fmt.Fprintf(w, "    Image ID:\t%s\n", cs.ImageID)
		}
		for _, port := range c.Ports {
			hp := ""
			if port.HostPort != 0 {
				hp = fmt.Sprintf(" (host %d)", port.HostPort)
			}
			fmt.Fprintf(w, "    Port:\t%d/%s%s\n", port.ContainerPort, port.Protocol, hp)
		}
		if len(c.Command) > 0 {
			fmt.Fprintf(w, "    Command:\t%s\n", strings.Join(c.Command, " "))
		}
		if len(c.Args) > 0 {
			fmt.Fprintf(w, "    Args:\t%s\n", strings.Join(c.Args, " "))
		}
		if ok {
			describeState(w, "State", cs.State)
			if cs.LastState.Terminated != nil {
				describeState(w, "Last State", cs.LastState)
			}
			fmt.Fprintf(w, "    Ready:\t%v\n", cs.Ready)
			fmt.Fprintf(w, "    Restart Count:\t%d\n", cs.RestartCount)
		}
		if len(c.Resources.Limits) > 0 {
			fmt.Fprintf(w, "    Limits:\t%s\n", resourcesText(c.Resources.Limits))
		}
		if len(c.Resources.Requests) > 0 {
			fmt.Fprintf(w, "    Requests:\t%s\n", resourcesText(c.Resources.Requests))
		}
	}
}

func describeState(w io.Writer, label string, s api.ContainerState) {
	switch {
	case s.Running != nil:
		fmt.Fprintf(w, "    %s:\tRunning\n      Started:\t%s\n", label, timeText(s.Running.StartedAt))
	case s.Waiting != nil:
		fmt.Fprintf(w, "    %s:\tWaiting\n      Reason:\t%s\n", label, s.Waiting.Reason)
		if s.Waiting.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", s.Waiting.Message)
		}
	case s.Terminated != nil:
		t := s.Terminated
		fmt.Fprintf(w, "    %s:\tTerminated\n      Reason:\t%s\n      Exit Code:\t%d\n      Started:\t%s\n      Finished:\t%s\n",
			label, t.Reason, t.ExitCode, timeText(t.StartedAt), timeText(t.FinishedAt))
		if t.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", t.Message)
		}
	}
}

func resourcesText(rl api.ResourceList) string {
	keys := make([]string, 0, len(rl))
	for k := range rl {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		q := rl[api.ResourceName(k)]
		parts[i] = k + ": " + q.String()
	}
	return strings.Join(parts, ", ")
}

func describeNode(w io.Writer, n *api.Node, podObjs []api.Object) {
	kv(w, "Name", n.Name)
	kv(w, "Labels", mapText(n.Labels))
	kv(w, "CreationTimestamp", timeText(n.CreationTimestamp))
	var taints []string
	for _, t := range n.Spec.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		taints = append(taints, s+":"+string(t.Effect))
	}
	kv(w, "Taints", orNone(strings.Join(taints, "\n\t")))
	kv(w, "Unschedulable", n.Spec.Unschedulable)
	kv(w, "PodCIDR", orNone(n.Spec.PodCIDR))
	fmt.Fprintln(w, "Conditions:")
	fmt.Fprintln(w, "  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
	for _, c := range n.Status.Conditions {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, timeText(c.LastHeartbeatTime), timeText(c.LastTransitionTime), c.Reason, c.Message)
	}
	fmt.Fprintln(w, "Addresses:")
	for _, a := range n.Status.Addresses {
		fmt.Fprintf(w, "  %s:\t%s\n", a.Type, a.Address)
	}
	fmt.Fprintln(w, "Capacity:")
	resourceLines(w, n.Status.Capacity)
	fmt.Fprintln(w, "Allocatable:")
	resourceLines(w, n.Status.Allocatable)
	i := n.Status.NodeInfo
	fmt.Fprintln(w, "System Info:")
	fmt.Fprintf(w, "  Machine ID:\t%s\n  Kernel Version:\t%s\n  OS Image:\t%s\n  Operating System:\t%s\n  Architecture:\t%s\n  Agent Version:\t%s\n",
		i.MachineID, i.KernelVersion, i.OSImage, i.OperatingSystem, i.Architecture, i.AgentVersion)
	for _, r := range i.Runtimes {
		fmt.Fprintf(w, "  Runtime:\t%s %s\n", r.Name, r.Version)
	}

	var cpu, mem resource.Quantity
	var containerPods, wasmPods int
	fmt.Fprintf(w, "Non-terminated Pods:\n")
	fmt.Fprintln(w, "  Namespace\tName\tRuntime\tCPU Requests\tMemory Requests\tAge")
	now := time.Now()
	for _, o := range podObjs {
		p := o.(*api.Pod)
		if p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
			continue
		}
		var pc, pm resource.Quantity
		for _, c := range p.Spec.Containers {
			if q, ok := c.Resources.Requests[api.ResourceCPU]; ok {
				pc.Add(q)
			}
			if q, ok := c.Resources.Requests[api.ResourceMemory]; ok {
				pm.Add(q)
			}
		}
		cpu.Add(pc)
		mem.Add(pm)
		if p.Spec.RuntimeClass() == api.RuntimeWasm {
			wasmPods++
		} else {
			containerPods++
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Spec.RuntimeClass(), pc.String(), pm.String(), ageOf(now, p.CreationTimestamp))
	}
	fmt.Fprintln(w, "Allocated resources:")
	fmt.Fprintln(w, "  Resource\tRequests")
	fmt.Fprintf(w, "  cpu\t%s%s\n", cpu.String(), percentOf(cpu, n.Status.Allocatable[api.ResourceCPU]))
	fmt.Fprintf(w, "  memory\t%s%s\n", mem.String(), percentOf(mem, n.Status.Allocatable[api.ResourceMemory]))
	fmt.Fprintf(w, "  pods\t%d\n", containerPods)
	fmt.Fprintf(w, "  %s\t%d\n", api.ResourceWasmPods, wasmPods)
}

func ageOf(now, t time.Time) string {
	p := printer{now: now}
	return p.age(t)
}

func percentOf(used, total resource.Quantity) string {
	if total.IsZero() {
		return ""
	}
	return fmt.Sprintf(" (%d%%)", used.MilliValue()*100/total.MilliValue())
}

func resourceLines(w io.Writer, rl api.ResourceList) {
	keys := make([]string, 0, len(rl))
	for k := range rl {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		q := rl[api.ResourceName(k)]
		fmt.Fprintf(w, "  %s:\t%s\n", k, q.String())
	}
}

func lower(s string) string { return strings.ToLower(s) }

// describeEventsOf prints the Events section of obj: the events about it
// (for a pod, about this pod, not an earlier one of its name), newest last.
func describeEventsOf(ctx context.Context, w io.Writer, c *client.Client, obj api.Object) {
	ref := api.RefTo(obj)
	sel := "involvedObject.kind=" + ref.Kind + ",involvedObject.name=" + ref.Name
	if ref.UID != "" {
		sel += ",involvedObject.uid=" + ref.UID
	}
	events, err := c.Events(ctx, api.EventNamespace(ref), false, sel)
	if err != nil {
		fmt.Fprintf(w, "Events:\t<unavailable: %v>\n", err)
		return
	}
	describeEvents(w, time.Now(), events)
}

// describeEvents prints events as kubectl describe does, in the order
// given (oldest first: newest last).
func describeEvents(w io.Writer, now time.Time, events []*api.Event) {
	if len(events) == 0 {
		fmt.Fprintln(w, "Events:\t<none>")
		return
	}
	fmt.Fprintln(w, "Events:")
	fmt.Fprintln(w, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(w, "  ----\t------\t----\t----\t-------")
	for _, e := range events {
		from := e.Source.Component
		if e.Source.Host != "" {
			from += ", " + e.Source.Host
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, eventAge(now, e), from, strings.TrimSpace(e.Message))
	}
}

// eventAge is kubectl's age of an event: "5m", or "2m (x4 over 10m)" for
// a repeated one.
func eventAge(now time.Time, e *api.Event) string {
	last := ageOf(now, e.LastTimestamp)
	if e.Count > 1 {
		return fmt.Sprintf("%s (x%d over %s)", last, e.Count, ageOf(now, e.FirstTimestamp))
	}
	return last
}
