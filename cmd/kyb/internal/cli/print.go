package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
)

// printer writes objects as kubectl does: a table (plain or wide), YAML, JSON or names.
type printer struct {
	out     io.Writer
	format  string // "", wide, yaml, json, name
	allNS   bool
	tw      *tabwriter.Writer
	headers bool
	now     time.Time
}

func newPrinter(out io.Writer, format string, allNS bool) (*printer, error) {
	switch format {
	case "", "wide", "yaml", "json", "name":
	default:
		return nil, fmt.Errorf("output format %q: want wide, yaml, json or name", format)
	}
	return &printer{out: out, format: format, allNS: allNS, now: time.Now()}, nil
}

func (p *printer) print(kind *api.Kind, objs []api.Object) error {
	switch p.format {
	case "json":
		var v any = objs
		if len(objs) == 1 {
			v = objs[0]
		} else {
			v = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
		}
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	case "yaml":
		for i, o := range objs {
			b, err := yaml.Marshal(o)
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprintln(p.out, "---")
			}
			p.out.Write(b)
		}
		return nil
	case "name":
		for _, o := range objs {
			fmt.Fprintf(p.out, "%s/%s\n", strings.ToLower(kind.Name), o.GetObjectMeta().Name)
		}
		return nil
	}
	if p.tw == nil {
		p.tw = tabwriter.NewWriter(p.out, 3, 0, 3, ' ', 0)
	} else {
		// A watch prints for as long as it runs: ages count from now.
		p.now = time.Now()
	}
	if !p.headers {
		p.headers = true
		h := columns(kind, p.format == "wide")
		if kind.Namespaced && p.allNS {
			h = append([]string{"NAMESPACE"}, h...)
		}
		fmt.Fprintln(p.tw, strings.Join(h, "\t"))
	}
	for _, o := range objs {
		row := p.row(o)
		if kind.Namespaced && p.allNS {
			row = append([]string{o.GetObjectMeta().Namespace}, row...)
		}
		fmt.Fprintln(p.tw, strings.Join(row, "\t"))
	}
	return p.tw.Flush()
}

func columns(kind *api.Kind, wide bool) []string {
	switch kind.Name {
	case "Pod":
		c := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
		if wide {
			c = append(c, "IP", "NODE", "RUNTIME")
		}
		return c
	case "Node":
		c := []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"}
		if wide {
			c = append(c, "INTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "RUNTIMES")
		}
		return c
	case "Role", "ClusterRole":
		return []string{"NAME", "CREATED AT"}
	case "Event":
		c := []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}
		if wide {
			c = []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"}
		}
		return c
	case "RoleBinding", "ClusterRoleBinding":
		c := []string{"NAME", "ROLE", "AGE"}
		if wide {
			c = append(c, "USERS", "GROUPS", "SERVICEACCOUNTS")
		}
		return c
	}
	return []string{"NAME", "STATUS", "AGE"}
}

// createdAt is the CREATED AT column of roles, as kubectl prints it.
func createdAt(t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return t.UTC().Format(time.RFC3339)
}

// bindingRow is the row of a RoleBinding or ClusterRoleBinding: NAME, ROLE
// (Kind/name), AGE and, wide, its users, groups and service accounts.
func (p *printer) bindingRow(m *api.ObjectMeta, ref api.RoleRef, subjects []api.Subject) []string {
	row := []string{m.Name, ref.Kind + "/" + ref.Name, p.age(m.CreationTimestamp)}
	if p.format == "wide" {
		var users, groups, sas []string
		for _, s := range subjects {
			switch s.Kind {
			case api.SubjectUser:
				users = append(users, s.Name)
			case api.SubjectGroup:
				groups = append(groups, s.Name)
			case api.SubjectServiceAccount:
				sas = append(sas, s.Namespace+"/"+s.Name)
			}
		}
		row = append(row, strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "))
	}
	return row
}

func (p *printer) age(t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(p.now.Sub(t))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func (p *printer) row(o api.Object) []string {
	switch v := o.(type) {
	case *api.Pod:
		ready, restarts := 0, int32(0)
		var lastRestart time.Time
		for _, cs := range v.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
			if t := cs.LastState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
				lastRestart = t.FinishedAt
			}
		}
		r := strconv.Itoa(int(restarts))
		if restarts > 0 && !lastRestart.IsZero() {
			r += " (" + p.age(lastRestart) + " ago)"
		}
		row := []string{v.Name, fmt.Sprintf("%d/%d", ready, len(v.Spec.Containers)), podStatusText(v), r, p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			row = append(row, orNone(v.Status.PodIP), orNone(v.Spec.NodeName), v.Spec.RuntimeClass())
		}
		return row
	case *api.Node:
		status := "NotReady"
		if c := v.Status.Condition(api.NodeReady); c != nil {
			switch c.Status {
			case api.ConditionTrue:
				status = "Ready"
			case api.ConditionUnknown:
				status = "Unknown"
			}
		}
		if v.Spec.Unschedulable {
			status += ",SchedulingDisabled"
		}
		var roles []string
		for k := range v.Labels {
			if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok {
				roles = append(roles, r)
			}
		}
		sort.Strings(roles)
		row := []string{v.Name, status, orNone(strings.Join(roles, ",")), p.age(v.CreationTimestamp), orNone(v.Status.NodeInfo.AgentVersion)}
		if p.format == "wide" {
			ip := ""
			for _, a := range v.Status.Addresses {
				if a.Type == api.NodeInternalIP {
					ip = a.Address
					break
				}
			}
			var rts []string
			for _, r := range v.Status.NodeInfo.Runtimes {
				rts = append(rts, r.Name+"://"+r.Version)
			}
			row = append(row, orNone(ip), orNone(v.Status.NodeInfo.OSImage), orNone(v.Status.NodeInfo.KernelVersion), orNone(strings.Join(rts, ",")))
		}
		return row
	case *api.Namespace:
		phase := v.Status.Phase
		if phase == "" {
			phase = "Active"
		}
		return []string{v.Name, phase, p.age(v.CreationTimestamp)}
	case *api.Role:
		return []string{v.Name, createdAt(v.CreationTimestamp)}
	case *api.ClusterRole:
		return []string{v.Name, createdAt(v.CreationTimestamp)}
	case *api.Event:
		obj := strings.ToLower(v.InvolvedObject.Kind) + "/" + v.InvolvedObject.Name
		msg := strings.TrimSpace(v.Message)
		if p.format == "wide" {
			src := v.Source.Component
			if v.Source.Host != "" {
				src += ", " + v.Source.Host
			}
			return []string{p.age(v.LastTimestamp), v.Type, v.Reason, obj, v.InvolvedObject.FieldPath, src, msg,
				p.age(v.FirstTimestamp), strconv.Itoa(int(v.Count)), v.Name}
		}
		return []string{eventAge(p.now, v), v.Type, v.Reason, obj, msg}
	case *api.RoleBinding:
		return p.bindingRow(&v.ObjectMeta, v.RoleRef, v.Subjects)
	case *api.ClusterRoleBinding:
		return p.bindingRow(&v.ObjectMeta, v.RoleRef, v.Subjects)
	}
	m := o.GetObjectMeta()
	return []string{m.Name, "", p.age(m.CreationTimestamp)}
}

// podStatusText is the STATUS column of `kubectl get pods`: a container's
// waiting or terminated reason when there is one, else the phase.
func podStatusText(p *api.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	if c := p.Status.Condition(api.PodScheduled); c != nil && c.Status == api.ConditionFalse && p.Spec.NodeName == "" {
		return "Pending"
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			return cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "" && p.Status.Phase != api.PodSucceeded:
			reason = cs.State.Terminated.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "" && p.Status.Phase == api.PodSucceeded:
			reason = "Completed"
		}
	}
	if reason == "" {
		reason = "Pending"
	}
	return reason
}
