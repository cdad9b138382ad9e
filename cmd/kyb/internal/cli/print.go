package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// printer writes objects as kubectl does: a table (plain or wide), YAML,
// JSON, names, a JSONPath template or custom columns. Tables keep their
// column widths from one print to the next, so the rows of `get -w` line
// up with the listing (kubectl's tabwriter.RememberWidths).
type printer struct {
	out     io.Writer
	format  string // "", wide, yaml, json, name, jsonpath, custom-columns
	allNS   bool
	headers bool
	now     time.Time
	widths  []int

	jp         *jsonPath      // -o jsonpath=
	cols       []customColumn // -o custom-columns=
	sortBy     []jpStep       // --sort-by
	showLabels bool           // --show-labels
	labelCols  []string       // -L
	withKind   bool           // NAME as kind/name (several kinds in one command)
}

// customColumn is one NAME:.json.path of -o custom-columns=.
type customColumn struct {
	header string
	path   []jpStep
}

// outputFormats is what -o takes.
const outputFormats = "wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=NAME:.path,..."

func newPrinter(out io.Writer, format string, allNS bool) (*printer, error) {
	p := &printer{out: out, format: format, allNS: allNS, now: time.Now()}
	name, arg, hasArg := strings.Cut(format, "=")
	switch {
	case !hasArg && (format == "" || format == "wide" || format == "yaml" || format == "json" || format == "name"):
	case name == "jsonpath" && hasArg:
		jp, err := parseJSONPath(arg)
		if err != nil {
			return nil, fmt.Errorf("-o jsonpath: %w", err)
		}
		p.format, p.jp = "jsonpath", jp
	case name == "custom-columns" && hasArg:
		for _, spec := range strings.Split(arg, ",") {
			h, path, ok := strings.Cut(spec, ":")
			if !ok || h == "" || path == "" {
				return nil, fmt.Errorf("-o custom-columns: %q: want HEADER:.json.path, e.g. NAME:.metadata.name", spec)
			}
			steps, err := parsePath(strings.Trim(strings.TrimSpace(path), "{}"))
			if err != nil {
				return nil, fmt.Errorf("-o custom-columns: column %s: %w", h, err)
			}
			p.cols = append(p.cols, customColumn{header: h, path: steps})
		}
		p.format = "custom-columns"
	default:
		return nil, fmt.Errorf("output format %q: want %s", format, outputFormats)
	}
	return p, nil
}

// setSortBy sets --sort-by, a JSONPath such as .metadata.name or
// '{.status.startTime}'.
func (p *printer) setSortBy(expr string) error {
	if expr == "" {
		return nil
	}
	steps, err := parsePath(strings.Trim(strings.TrimSpace(expr), "{}"))
	if err != nil {
		return fmt.Errorf("--sort-by: %w", err)
	}
	p.sortBy = steps
	return nil
}

// structured reports whether the format prints documents rather than a
// table: those print one List for a listing.
func (p *printer) structured() bool {
	switch p.format {
	case "json", "yaml", "jsonpath", "name":
		return true
	}
	return false
}

// printItem is an object with its kind, for printing several kinds at once.
type printItem struct {
	kind *api.Kind
	obj  api.Object
}

// print prints a listing of one kind: a table, or one List document.
func (p *printer) print(kind *api.Kind, objs []api.Object) error {
	items := make([]printItem, len(objs))
	for i, o := range objs {
		items[i] = printItem{kind, o}
	}
	return p.printItems(items, false)
}

// printObject prints one object: `get KIND NAME` prints the object itself,
// not a List.
func (p *printer) printObject(kind *api.Kind, obj api.Object) error {
	return p.printItems([]printItem{{kind, obj}}, true)
}

// printItems prints items, sorted by --sort-by; single prints the one item
// as itself instead of a List. A table holds one kind.
func (p *printer) printItems(items []printItem, single bool) error {
	if err := p.sort(items); err != nil {
		return err
	}
	switch p.format {
	case "name":
		for _, it := range items {
			fmt.Fprintf(p.out, "%s/%s\n", strings.ToLower(it.kind.Name), it.obj.GetObjectMeta().Name)
		}
		return nil
	case "json", "yaml", "jsonpath":
		var v any
		if single && len(items) == 1 {
			v = items[0].obj
		} else {
			objs := make([]api.Object, len(items))
			for i, it := range items {
				objs[i] = it.obj
			}
			v = listOf(objs)
		}
		return p.document(v)
	}
	if len(items) == 0 {
		return nil
	}
	kind := items[0].kind
	var rows [][]string
	if !p.headers {
		p.headers = true
		rows = append(rows, p.header(kind))
	} else {
		// A watch prints for as long as it runs: ages count from now.
		p.now = time.Now()
	}
	for _, it := range items {
		row, err := p.fullRow(it)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	return p.writeRows(rows)
}

// listOf is the List kubectl prints for a listing, whatever its length.
func listOf(objs []api.Object) map[string]any {
	if objs == nil {
		objs = []api.Object{}
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}, "items": objs}
}

// document writes v as JSON, YAML or through the JSONPath template.
func (p *printer) document(v any) error {
	switch p.format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = p.out.Write(b)
		return err
	}
	g, err := toGeneric(v)
	if err != nil {
		return err
	}
	var b strings.Builder
	p.jp.execute(&b, g)
	_, err = io.WriteString(p.out, b.String())
	return err
}

// sort orders items by --sort-by: numbers by value, the rest as text;
// items without the field come first, as kubectl puts them.
func (p *printer) sort(items []printItem) error {
	if p.sortBy == nil || len(items) < 2 {
		return nil
	}
	keys := make([]any, len(items))
	for i, it := range items {
		g, err := toGeneric(it.obj)
		if err != nil {
			return err
		}
		if vs := evalPath(p.sortBy, g); len(vs) > 0 {
			keys[i] = vs[0]
		}
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lessKey(keys[idx[a]], keys[idx[b]]) })
	sorted := make([]printItem, len(items))
	for i, j := range idx {
		sorted[i] = items[j]
	}
	copy(items, sorted)
	return nil
}

func lessKey(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b != nil
	}
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	if aok && bok {
		return fa < fb
	}
	return jpString(a) < jpString(b)
}

// header is a table's header row, with NAMESPACE, -L and LABELS columns.
func (p *printer) header(kind *api.Kind) []string {
	if p.format == "custom-columns" {
		h := make([]string, len(p.cols))
		for i, c := range p.cols {
			h[i] = c.header
		}
		return h
	}
	h := columns(kind, p.format == "wide")
	if kind.Namespaced && p.allNS {
		h = append([]string{"NAMESPACE"}, h...)
	}
	for _, l := range p.labelCols {
		parts := strings.Split(l, "/")
		h = append(h, strings.ToUpper(parts[len(parts)-1]))
	}
	if p.showLabels {
		h = append(h, "LABELS")
	}
	return h
}

// fullRow is an object's table row with the columns header names.
func (p *printer) fullRow(it printItem) ([]string, error) {
	if p.format == "custom-columns" {
		g, err := toGeneric(it.obj)
		if err != nil {
			return nil, err
		}
		row := make([]string, len(p.cols))
		for i, c := range p.cols {
			var vals []string
			for _, v := range evalPath(c.path, g) {
				vals = append(vals, jpString(v))
			}
			row[i] = orNone(strings.Join(vals, ","))
		}
		return row, nil
	}
	m := it.obj.GetObjectMeta()
	row := p.row(it.obj)
	if p.withKind && len(row) > 0 {
		row[0] = strings.ToLower(it.kind.Name) + "/" + row[0]
	}
	if it.kind.Namespaced && p.allNS {
		row = append([]string{m.Namespace}, row...)
	}
	for _, l := range p.labelCols {
		row = append(row, m.Labels[l])
	}
	if p.showLabels {
		row = append(row, labelsText(m.Labels))
	}
	return row, nil
}

// labelsText is the LABELS column: k=v,k=v sorted, or <none>.
func labelsText(labels map[string]string) string {
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return orNone(strings.Join(kv, ","))
}

// writeRows writes table rows, each column as wide as its widest cell so
// far (in this print or an earlier one) plus three spaces; the last column
// is not padded.
func (p *printer) writeRows(rows [][]string) error {
	for _, r := range rows {
		for i, c := range r {
			if i >= len(p.widths) {
				p.widths = append(p.widths, 0)
			}
			p.widths[i] = max(p.widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", p.widths[i]-utf8.RuneCountInString(c)+3))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(p.out, b.String())
	return err
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
	case "Job":
		return jobColumns(wide)
	case "CronJob":
		return cronJobColumns(wide)
	case "Deployment":
		c := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}
		if wide {
			c = append(c, "CONTAINERS", "IMAGES", "SELECTOR")
		}
		return c
	case "ReplicaSet":
		c := []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}
		if wide {
			c = append(c, "CONTAINERS", "IMAGES", "SELECTOR")
		}
		return c
	case "DaemonSet":
		c := []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"}
		if wide {
			c = append(c, "CONTAINERS", "IMAGES", "SELECTOR")
		}
		return c
	case "Service":
		return serviceColumns(wide)
	case "EndpointSlice":
		return endpointSliceColumns()
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
	case *api.Job:
		return p.jobRow(v)
	case *api.Service:
		return p.serviceRow(v)
	case *api.EndpointSlice:
		return p.endpointSliceRow(v)
	case *api.CronJob:
		return p.cronJobRow(v)
	case *api.Deployment:
		want := int32(1)
		if v.Spec.Replicas != nil {
			want = *v.Spec.Replicas
		}
		r := []string{v.Name, fmt.Sprintf("%d/%d", v.Status.ReadyReplicas, want), strconv.Itoa(int(v.Status.UpdatedReplicas)),
			strconv.Itoa(int(v.Status.AvailableReplicas)), p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			r = append(r, templateWide(&v.Spec.Template, v.Spec.Selector)...)
		}
		return r
	case *api.ReplicaSet:
		want := int32(1)
		if v.Spec.Replicas != nil {
			want = *v.Spec.Replicas
		}
		r := []string{v.Name, strconv.Itoa(int(want)), strconv.Itoa(int(v.Status.Replicas)),
			strconv.Itoa(int(v.Status.ReadyReplicas)), p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			r = append(r, templateWide(&v.Spec.Template, v.Spec.Selector)...)
		}
		return r
	case *api.DaemonSet:
		sel := "<none>"
		if ns := v.Spec.Template.Spec.NodeSelector; len(ns) > 0 {
			kv := make([]string, 0, len(ns))
			for k, val := range ns {
				kv = append(kv, k+"="+val)
			}
			sort.Strings(kv)
			sel = strings.Join(kv, ",")
		}
		s := v.Status
		r := []string{v.Name, strconv.Itoa(int(s.DesiredNumberScheduled)), strconv.Itoa(int(s.CurrentNumberScheduled)),
			strconv.Itoa(int(s.NumberReady)), strconv.Itoa(int(s.UpdatedNumberScheduled)), strconv.Itoa(int(s.NumberAvailable)),
			sel, p.age(v.CreationTimestamp)}
		if p.format == "wide" {
			r = append(r, templateWide(&v.Spec.Template, v.Spec.Selector)...)
		}
		return r
	}
	m := o.GetObjectMeta()
	return []string{m.Name, "", p.age(m.CreationTimestamp)}
}

// podStatusText is the STATUS column of `kubectl get pods`, computed as
// kubectl computes it: while an init container has not succeeded,
// Init:<its waiting or terminated reason> (Init:ImagePullBackOff,
// Init:Error, Init:CrashLoopBackOff) or Init:<succeeded>/<all>; then the
// last container's waiting or terminated reason, else the phase.
func podStatusText(p *api.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	if c := p.Status.Condition(api.PodScheduled); c != nil && c.Status == api.ConditionFalse && p.Spec.NodeName == "" {
		return "Pending"
	}
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	if init, ok := initStatusText(p); ok {
		return init
	}
	hasRunning := false
	for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
		cs := p.Status.ContainerStatuses[i]
		switch t := cs.State.Terminated; {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			reason = cs.State.Waiting.Reason
		case t != nil && t.Reason != "":
			reason = t.Reason
		case t != nil && t.Signal != 0:
			reason = fmt.Sprintf("Signal:%d", t.Signal)
		case t != nil:
			reason = fmt.Sprintf("ExitCode:%d", t.ExitCode)
		case cs.Ready && cs.State.Running != nil:
			hasRunning = true
		}
	}
	if reason == runtimes.ReasonCompleted && hasRunning {
		reason = "NotReady"
		if c := p.Status.Condition(api.PodReady); c != nil && c.Status == api.ConditionTrue {
			reason = "Running"
		}
	}
	if reason == "" {
		reason = "Pending"
	}
	return reason
}

// initStatusText is the STATUS of a pod still initializing, and whether it
// is: the first init container that has not succeeded decides it.
func initStatusText(p *api.Pod) (string, bool) {
	for i, cs := range p.Status.InitContainerStatuses {
		switch t := cs.State.Terminated; {
		case t != nil && t.ExitCode == 0:
			continue
		case t != nil && t.Reason != "":
			return "Init:" + t.Reason, true
		case t != nil && t.Signal != 0:
			return fmt.Sprintf("Init:Signal:%d", t.Signal), true
		case t != nil:
			return fmt.Sprintf("Init:ExitCode:%d", t.ExitCode), true
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != runtimes.ReasonPodInitializing:
			return "Init:" + cs.State.Waiting.Reason, true
		default:
			return fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers)), true
		}
	}
	return "", false
}

// templateWide is the CONTAINERS, IMAGES and SELECTOR columns of a
// workload in wide output.
func templateWide(t *api.PodTemplateSpec, sel *api.LabelSelector) []string {
	var names, images []string
	for _, c := range t.Spec.Containers {
		names = append(names, c.Name)
		images = append(images, c.Image)
	}
	selector := "<none>"
	if s, err := sel.Selector(); err == nil && sel != nil {
		selector = s.String()
	}
	return []string{strings.Join(names, ","), strings.Join(images, ","), selector}
}
