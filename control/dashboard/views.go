package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// query is a view's parsed, checked parameters.
type query struct {
	// Namespace is the namespace shown; "" for all namespaces.
	Namespace string
	Phase     string
	Runtime   string
	Label     string
	// Name is the object of a detail view.
	Name      string
	Container string
}

// values are the query as URL parameters (for links that keep it).
func (q query) values() url.Values {
	v := url.Values{}
	if q.Namespace != "" {
		v.Set("ns", q.Namespace)
	}
	return v
}

// NSQuery is "?ns=NS" or "" (for links that keep the namespace).
func (q query) NSQuery() string {
	if q.Namespace == "" {
		return ""
	}
	return "?" + q.values().Encode()
}

// view is one page of the dashboard: the objects it reads and how it shows them.
type view struct {
	pattern string // the ServeMux pattern of its page (and, under /live, its stream)
	name    string // its fragment template
	title   string
	nav     string // the navigation entry it belongs to
	// detail views take the namespace and name from the path.
	detail  bool
	sources func(q query, sess *session) map[string]source
	data    func(ctx context.Context, s *Server, q query, sess *session, snap snapshot) any
}

var views = []*view{
	{pattern: "/{$}", name: "overview", title: "Overview", nav: "overview", sources: overviewSources, data: overviewData},
	{pattern: "/pods", name: "pods", title: "Pods", nav: "pods", sources: podsSources, data: podsData},
	{pattern: "/pods/{namespace}/{name}", name: "pod", title: "Pod", nav: "pods", detail: true, sources: podSources, data: podData},
	{pattern: "/workloads", name: "workloads", title: "Workloads", nav: "workloads", sources: workloadSources, data: workloadData},
	{pattern: "/services", name: "services", title: "Services", nav: "services", sources: serviceSources, data: serviceData},
	{pattern: "/nodes", name: "nodes", title: "Nodes", nav: "nodes", sources: nodeSources, data: nodeData},
}

var (
	podKind       = api.KindOf(&api.Pod{})
	namespaceKind = api.KindOf(&api.Namespace{})
)

func badParam(name, format string, args ...any) error {
	return api.NewBadRequest("%s: %s", name, fmt.Sprintf(format, args...))
}

// parse reads and checks a view's parameters; a bad one is a 400 naming it.
func (v *view) parse(r *http.Request) (query, error) {
	uq := r.URL.Query()
	q := query{Namespace: uq.Get("ns"), Phase: uq.Get("phase"), Runtime: uq.Get("runtime"), Label: uq.Get("label"), Container: uq.Get("container")}
	if v.detail {
		q.Namespace, q.Name = r.PathValue("namespace"), r.PathValue("name")
		if errs := api.ValidateName(podKind, q.Name); len(errs) > 0 {
			return q, badParam("name", "%s", strings.Join(errs, "; "))
		}
	}
	if q.Namespace != "" {
		if errs := api.ValidateName(namespaceKind, q.Namespace); len(errs) > 0 {
			return q, badParam("ns", "%s", strings.Join(errs, "; "))
		}
	}
	switch api.PodPhase(q.Phase) {
	case "", api.PodPending, api.PodRunning, api.PodSucceeded, api.PodFailed, api.PodUnknown:
	default:
		return q, badParam("phase", "%q: want Pending, Running, Succeeded, Failed or Unknown", truncate(q.Phase, 64))
	}
	switch q.Runtime {
	case "", api.RuntimeContainerd, api.RuntimeWasm:
	default:
		return q, badParam("runtime", "%q: want %s or %s", truncate(q.Runtime, 64), api.RuntimeContainerd, api.RuntimeWasm)
	}
	if len(q.Label) > 1024 {
		return q, badParam("label", "a selector of %d bytes is longer than 1024", len(q.Label))
	}
	if q.Label != "" {
		if _, err := labels.Parse(q.Label); err != nil {
			return q, badParam("label", "%v", err)
		}
	}
	if q.Container != "" {
		if errs := validation.IsDNS1123Label(q.Container); len(errs) > 0 {
			return q, badParam("container", "%s", strings.Join(errs, "; "))
		}
	}
	return q, nil
}

// nsSource is kind in the query's namespace, or in all.
func nsSource(kind string, q query) source {
	return source{Kind: kind, Namespace: q.Namespace, All: q.Namespace == ""}
}

// page renders a view's whole page from a list of each source; its script
// then follows the view's live stream.
func (s *Server) page(v *view) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		q, err := v.parse(r)
		if err != nil {
			writeStatus(w, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		snap := read(ctx, sess.c, v.sources(q, sess))
		var frag bytes.Buffer
		if err := s.tmpl.ExecuteTemplate(&frag, v.name, s.viewData(ctx, v, q, sess, snap)); err != nil {
			s.log.Error("dashboard: render", "view", v.name, "err", err)
			writeStatus(w, fmt.Errorf("render %s: %w", v.name, err))
			return
		}
		title := v.title
		if v.detail {
			title = v.title + " " + q.Namespace + "/" + q.Name
		}
		w.Header().Set("Cache-Control", "no-store")
		s.render(w, http.StatusOK, "layout", layoutData{
			Title: title, Nav: v.nav, User: sess.user, CSRF: sess.csrf, Query: q,
			Live:    "/live" + r.URL.RequestURI(),
			Content: template.HTML(frag.String()), //nolint:gosec // rendered by html/template above
			Detail:  v.detail,
		})
	}
}

type layoutData struct {
	Title, Nav, User, CSRF, Live string
	Query                        query
	Content                      template.HTML
	Detail                       bool
}

// common is what every fragment gets besides its view's data.
type common struct {
	Query query
	CSRF  string
	User  string
	// Back is the page an action returns to.
	Back string
	View any
}

func (s *Server) viewData(ctx context.Context, v *view, q query, sess *session, snap snapshot) common {
	back := strings.Replace(v.pattern, "{$}", "", 1)
	if v.detail {
		back = "/pods/" + q.Namespace + "/" + q.Name
	}
	if e := q.values().Encode(); e != "" {
		back += "?" + e
	}
	return common{Query: q, CSRF: sess.csrf, User: sess.user, Back: back, View: v.data(ctx, s, q, sess, snap)}
}

func (s *Server) render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("dashboard: render", "template", name, "err", err)
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// writeStatus answers err as its api.Status (code and message), in plain
// text, or 500.
func writeStatus(w http.ResponseWriter, err error) {
	var st *api.Status
	if !errors.As(err, &st) {
		st = &api.Status{Code: 500, Reason: api.ReasonInternal, Message: err.Error()}
	}
	code := st.Code
	if code < 400 || code > 599 {
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s: %s\n", code, st.Reason, st.Message)
}

// problem is how a fragment shows a source it could not read.
type problem struct {
	What, Message string
	Forbidden     bool
}

func feedProblem(what string, f *feed) *problem {
	if f == nil || f.err == nil {
		return nil
	}
	return &problem{What: what, Message: f.err.Error(), Forbidden: api.IsForbidden(f.err)}
}

// --- overview ---------------------------------------------------------------

func overviewSources(q query, _ *session) map[string]source {
	return map[string]source{"nodes": {Kind: "Node"}, "pods": nsSource("Pod", q)}
}

// runtimeUse is a node's (or the cluster's) allocation for one runtime.
type runtimeUse struct {
	Runtime                 string
	Pods, PodSlots          int64
	CPU, Memory             int64 // requested by its pods
	CPUText, MemText        string
	PodsPct, CPUPct, MemPct string
}

type nodeUse struct {
	Name          string
	Ready         bool
	ReadyText     string
	CPU, Mem      string // allocatable
	Runtimes      []runtimeUse
	Unschedulable bool
}

type phaseCount struct {
	Runtime string
	Counts  []int
	Total   int
}

type overview struct {
	Nodes        []nodeUse
	NodesProblem *problem
	PodsProblem  *problem
	Phases       []string
	ByRuntime    []phaseCount
	PodTotal     int
	// Usage plots the nodes' usage over the last hour (usage.go).
	Usage *usageView
}

var phases = []api.PodPhase{api.PodPending, api.PodRunning, api.PodSucceeded, api.PodFailed, api.PodUnknown}

func quantityOf(l api.ResourceList, name api.ResourceName) (int64, int64) {
	q, ok := l[name]
	if !ok {
		return 0, 0
	}
	return q.MilliValue(), q.Value()
}

func allocatable(n *api.Node, name api.ResourceName) (milli, value int64) {
	if _, ok := n.Status.Allocatable[name]; ok {
		return quantityOf(n.Status.Allocatable, name)
	}
	return quantityOf(n.Status.Capacity, name)
}

func overviewData(ctx context.Context, _ *Server, _ query, sess *session, snap snapshot) any {
	o := &overview{NodesProblem: feedProblem("nodes", snap["nodes"]), PodsProblem: feedProblem("pods", snap["pods"])}
	o.Usage = usageOf(ctx, sess, "nodes", "", "")
	pods := snap["pods"].items()
	type key struct{ node, runtime string }
	use := map[key]*runtimeUse{}
	counts := map[string][]int{}
	for _, obj := range pods {
		p := obj.(*api.Pod)
		rt := p.Spec.RuntimeClass()
		if counts[rt] == nil {
			counts[rt] = make([]int, len(phases))
		}
		ph := p.Status.Phase
		if ph == "" {
			ph = api.PodPending
		}
		if i := slices.Index(phases, ph); i >= 0 {
			counts[rt][i]++
		}
		o.PodTotal++
		if p.Spec.NodeName == "" || ph == api.PodSucceeded || ph == api.PodFailed {
			continue
		}
		k := key{p.Spec.NodeName, rt}
		u := use[k]
		if u == nil {
			u = &runtimeUse{Runtime: rt}
			use[k] = u
		}
		cpu, mem := api.PodRequests(p)
		u.Pods++
		u.CPU += cpu
		u.Memory += mem
	}
	for _, ph := range phases {
		o.Phases = append(o.Phases, string(ph))
	}
	rts := make([]string, 0, len(counts))
	for rt := range counts {
		rts = append(rts, rt)
	}
	slices.Sort(rts)
	for _, rt := range rts {
		pc := phaseCount{Runtime: rt, Counts: counts[rt]}
		for _, n := range pc.Counts {
			pc.Total += n
		}
		o.ByRuntime = append(o.ByRuntime, pc)
	}
	for _, obj := range snap["nodes"].items() {
		n := obj.(*api.Node)
		cpu, _ := allocatable(n, api.ResourceCPU)
		_, mem := allocatable(n, api.ResourceMemory)
		nu := nodeUse{Name: n.Name, Ready: n.IsReady(), CPU: milli(cpu), Mem: bytesText(mem), Unschedulable: n.Spec.Unschedulable}
		nu.ReadyText = "NotReady"
		if nu.Ready {
			nu.ReadyText = "Ready"
		}
		names := []string{}
		for _, r := range n.Status.NodeInfo.Runtimes {
			names = append(names, r.Name)
		}
		for k := range use {
			if k.node == n.Name && !slices.Contains(names, k.runtime) {
				names = append(names, k.runtime)
			}
		}
		slices.Sort(names)
		for _, rt := range names {
			u := runtimeUse{Runtime: rt}
			if x := use[key{n.Name, rt}]; x != nil {
				u = *x
			}
			slots := api.ResourcePods
			if rt == api.RuntimeWasm {
				slots = api.ResourceWasmPods
			}
			_, u.PodSlots = allocatable(n, slots)
			u.CPUText, u.MemText = milli(u.CPU), bytesText(u.Memory)
			u.PodsPct, u.CPUPct, u.MemPct = percent(u.Pods, u.PodSlots), percent(u.CPU, cpu), percent(u.Memory, mem)
			nu.Runtimes = append(nu.Runtimes, u)
		}
		o.Nodes = append(o.Nodes, nu)
	}
	return o
}

// --- pods -------------------------------------------------------------------

func podsSources(q query, _ *session) map[string]source {
	src := nsSource("Pod", q)
	src.Label = q.Label
	if q.Phase != "" {
		src.Field = "status.phase=" + q.Phase
	}
	return map[string]source{"pods": src}
}

type podRow struct {
	Namespace, Name, Ready, Status, Runtime, Node, Age, IP string
	Restarts                                               int32
	CanDelete                                              bool
}

type podList struct {
	Rows    []podRow
	Problem *problem
	// Shown and Total count the rows when there are more than MaxRows.
	Shown, Total int
}

// maxRows bounds a list page: beyond it the page says how many there
// are and asks for a filter (Kubernetes' dashboard pages instead).
const maxRows = 500

func podRowOf(ctx context.Context, s *Server, sess *session, p *api.Pod) podRow {
	return podRow{Namespace: p.Namespace, Name: p.Name, Ready: podReady(p), Status: podStatus(p), Runtime: p.Spec.RuntimeClass(),
		Node: p.Spec.NodeName, Age: age(p.CreationTimestamp), IP: p.Status.PodIP, Restarts: podRestarts(p),
		CanDelete: s.canI(ctx, sess, "delete", "pods", p.Namespace)}
}

func podsData(ctx context.Context, s *Server, q query, sess *session, snap snapshot) any {
	l := &podList{Problem: feedProblem("pods", snap["pods"])}
	for _, obj := range snap["pods"].items() {
		p := obj.(*api.Pod)
		if q.Runtime != "" && p.Spec.RuntimeClass() != q.Runtime {
			continue
		}
		l.Total++
		if len(l.Rows) < maxRows {
			l.Rows = append(l.Rows, podRowOf(ctx, s, sess, p))
		}
	}
	if l.Total > len(l.Rows) {
		l.Shown = len(l.Rows)
	}
	return l
}

// --- one pod ----------------------------------------------------------------

func podSources(q query, _ *session) map[string]source {
	return map[string]source{
		"pod":    {Kind: "Pod", Namespace: q.Namespace, Field: "metadata.name=" + q.Name},
		"events": {Kind: "Event", Namespace: q.Namespace, Field: "involvedObject.kind=Pod,involvedObject.name=" + q.Name},
	}
}

type containerRow struct {
	Name, Image, State, Ready string
	Restarts                  int32
	Init                      bool
}

type eventRow struct {
	Type, Reason, Message, Source, Age string
	Count                              int32
}

type podDetail struct {
	Found         bool
	Row           podRow
	Pod           *api.Pod
	Containers    []containerRow
	Conditions    []string
	Events        []eventRow
	Problem       *problem
	EventsProblem *problem
	// Usage plots the pod's usage over the last hour (usage.go).
	Usage *usageView
}

func containerState(cs *api.ContainerStatus) string {
	switch {
	case cs == nil:
		return "Waiting"
	case cs.State.Running != nil:
		return "Running since " + cs.State.Running.StartedAt.UTC().Format("15:04:05")
	case cs.State.Terminated != nil:
		t := cs.State.Terminated
		return fmt.Sprintf("Terminated (%s, exit %d)", orDefault(t.Reason, "Completed"), t.ExitCode)
	case cs.State.Waiting != nil:
		return "Waiting (" + orDefault(cs.State.Waiting.Reason, "…") + ")"
	}
	return "Waiting"
}

func podData(ctx context.Context, s *Server, q query, sess *session, snap snapshot) any {
	d := &podDetail{Problem: feedProblem("pod", snap["pod"]), EventsProblem: feedProblem("events", snap["events"])}
	items := snap["pod"].items()
	if len(items) == 0 {
		return d
	}
	p := items[0].(*api.Pod)
	d.Found, d.Pod, d.Row = true, p, podRowOf(ctx, s, sess, p)
	d.Usage = usageOf(ctx, sess, "pods", p.Namespace, p.Name)
	status := func(list []api.ContainerStatus, name string) *api.ContainerStatus {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
		return nil
	}
	add := func(cs []api.Container, st []api.ContainerStatus, init bool) {
		for _, c := range cs {
			x := status(st, c.Name)
			row := containerRow{Name: c.Name, Image: c.Image, State: containerState(x), Init: init, Ready: "false"}
			if x != nil {
				row.Restarts = x.RestartCount
				if x.Ready {
					row.Ready = "true"
				}
			}
			d.Containers = append(d.Containers, row)
		}
	}
	add(p.Spec.InitContainers, p.Status.InitContainerStatuses, true)
	add(p.Spec.Containers, p.Status.ContainerStatuses, false)
	for _, c := range p.Status.Conditions {
		d.Conditions = append(d.Conditions, c.Type+"="+conditionText(c.Status, c.Reason))
	}
	evs := snap["events"].items()
	lastOf := func(o api.Object) time.Time {
		ev := o.(*api.Event)
		if ev.LastTimestamp.IsZero() {
			return ev.CreationTimestamp
		}
		return ev.LastTimestamp
	}
	// Oldest first, as kubectl describe lists them.
	slices.SortStableFunc(evs, func(a, b api.Object) int { return lastOf(a).Compare(lastOf(b)) })
	for _, obj := range evs {
		ev := obj.(*api.Event)
		last := lastOf(obj)
		d.Events = append(d.Events, eventRow{Type: ev.Type, Reason: ev.Reason, Message: ev.Message,
			Source: strings.TrimSuffix(ev.Source.Component+", "+ev.Source.Host, ", "), Age: age(last), Count: ev.Count})
	}
	return d
}
