package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// Resource usage over the last hour: the overview plots each node's CPU and
// memory, a pod's page the pod's, from kyb.api.v1.top with series, asked as
// the signed-in user (RBAC on metrics.k8s.io decides). The plots are SVG
// rendered here (no script library); the page renders them with the view,
// and app.js refreshes them from GET /usage every 10 s between renders.

// usageView is what the "usage" template shows.
type usageView struct {
	// URL refreshes the plots (GET /usage?...).
	URL     string
	Problem *problem
	Plots   []usagePlot
	// Empty: no samples yet.
	Empty bool
}

// usagePlot is one object's CPU and memory plots.
type usagePlot struct {
	Title      string
	CPU, Mem   template.HTML
	CPUNow     string
	MemNow     string
	Allocation string
}

// usageOf reads the usage of the nodes (name "" for all) or of one pod.
func usageOf(ctx context.Context, sess *session, kind, ns, name string) *usageView {
	req := api.TopRequest{Kind: kind, Namespace: ns, Name: name, Series: true}
	v := &usageView{URL: "/usage?kind=" + kind}
	if kind == "pods" {
		v.URL += "&ns=" + ns + "&name=" + name
	}
	reply, err := sess.c.Top(ctx, req)
	if err != nil {
		if api.IsNotFound(err) {
			v.Empty = true
			return v
		}
		v.Problem = &problem{What: "usage", Message: err.Error(), Forbidden: api.IsForbidden(err)}
		return v
	}
	now := time.Now()
	for _, n := range reply.Nodes {
		p := usagePlot{Title: n.Name, CPUNow: cores(n.Usage.CPUNanoCores) + ofText(float64(n.Usage.CPUNanoCores)/1e6, float64(n.AllocatableCPUMilli), milli(n.AllocatableCPUMilli)),
			MemNow: memText(n.Usage.MemoryBytes) + ofText(float64(n.Usage.MemoryBytes), float64(n.AllocatableMemoryBytes), bytesText(n.AllocatableMemoryBytes))}
		p.CPU = plotSVG(n.Series, now, func(u api.UsagePoint) float64 { return float64(u.CPUNanoCores) / 1e9 }, float64(n.AllocatableCPUMilli)/1000, "CPU cores", func(f float64) string { return fmt.Sprintf("%.2f", f) })
		p.Mem = plotSVG(n.Series, now, func(u api.UsagePoint) float64 { return float64(u.MemoryBytes) }, float64(n.AllocatableMemoryBytes), "memory", func(f float64) string { return memText(uint64(f)) })
		v.Plots = append(v.Plots, p)
	}
	for _, m := range reply.Pods {
		p := usagePlot{Title: m.Namespace + "/" + m.Name, CPUNow: cores(m.Usage.CPUNanoCores), MemNow: memText(m.Usage.MemoryBytes)}
		p.CPU = plotSVG(m.Series, now, func(u api.UsagePoint) float64 { return float64(u.CPUNanoCores) / 1e9 }, 0, "CPU cores", func(f float64) string { return fmt.Sprintf("%.3f", f) })
		p.Mem = plotSVG(m.Series, now, func(u api.UsagePoint) float64 { return float64(u.MemoryBytes) }, 0, "memory", func(f float64) string { return memText(uint64(f)) })
		v.Plots = append(v.Plots, p)
	}
	v.Empty = len(v.Plots) == 0
	return v
}

// ofText is " (N% of TOTAL)", or "" when total is unknown.
func ofText(used, total float64, totalText string) string {
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%d%% of %s)", int(used/total*100), totalText)
}

func cores(nano uint64) string { return fmt.Sprintf("%dm", nano/1_000_000) }

// memText prints bytes of usage as bytesText does.
func memText(b uint64) string { return bytesText(int64(min(b, 1<<62))) }

// Plot geometry, in SVG user units (the SVG scales to its box).
const (
	plotW, plotH   = 320.0, 90.0
	plotPadL       = 4.0
	plotPadT       = 14.0
	plotHour       = time.Hour
	plotMaxSamples = 720
)

// plotSVG draws series ending at now as a line over an area: over the last
// hour, or since the first sample when that is later (at least a minute), so
// that a young cluster's plot is not a sliver at the right edge; scaled to
// 1.25 times its peak, with limit (the node's allocatable) as a dashed line
// when it falls within. Only numbers reach the SVG: no text of the series is
// interpolated but what format returns of a float.
func plotSVG(series []api.UsagePoint, now time.Time, value func(api.UsagePoint) float64, limit float64, label string, format func(float64) string) template.HTML {
	if len(series) > plotMaxSamples {
		series = series[len(series)-plotMaxSamples:]
	}
	peak := 0.0
	for _, p := range series {
		peak = max(peak, value(p))
	}
	top := peak * 1.25
	if top <= 0 {
		top = 1
	}
	span := plotHour
	if len(series) > 0 {
		span = min(plotHour, max(now.Sub(series[0].Time), time.Minute))
	}
	x := func(t time.Time) float64 {
		f := 1 - float64(now.Sub(t))/float64(span)
		return plotPadL + min(max(f, 0), 1)*(plotW-plotPadL)
	}
	y := func(v float64) float64 { return plotPadT + (1-v/top)*(plotH-plotPadT) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %g %g" preserveAspectRatio="none" role="img" aria-label="%s, last hour">`, plotW, plotH, template.HTMLEscapeString(label))
	fmt.Fprintf(&b, `<rect class="plot-bg" x="0" y="0" width="%g" height="%g"/>`, plotW, plotH)
	if limit > 0 && limit <= top {
		fmt.Fprintf(&b, `<line class="plot-limit" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, plotPadL, plotW, y(limit), y(limit))
	}
	if len(series) > 0 {
		var pts strings.Builder
		for _, p := range series {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.Time), y(value(p)))
		}
		first, last := series[0], series[len(series)-1]
		fmt.Fprintf(&b, `<polygon class="plot-area" points="%.1f,%.1f %s%.1f,%.1f"/>`, x(first.Time), y(0), pts.String(), x(last.Time), y(0))
		fmt.Fprintf(&b, `<polyline class="plot-line" points="%s"/>`, strings.TrimSpace(pts.String()))
	}
	fmt.Fprintf(&b, `<text class="plot-label" x="%g" y="11">%s · peak %s · last %s</text>`, plotPadL+2, template.HTMLEscapeString(label), template.HTMLEscapeString(format(peak)), spanText(span))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped labels only
}

// usage serves GET /usage?kind=nodes, or ?kind=pods&ns=NS&name=NAME: the
// plots as an HTML fragment, for app.js to refresh them.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	kind, ns, name := q.Get("kind"), q.Get("ns"), q.Get("name")
	switch kind {
	case "nodes":
		ns, name = "", ""
	case "pods":
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			writeStatus(w, badParam("ns", "%s", strings.Join(errs, "; ")))
			return
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			writeStatus(w, badParam("name", "%s", strings.Join(errs, "; ")))
			return
		}
	default:
		writeStatus(w, badParam("kind", "%q: want nodes or pods", truncate(kind, 64)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, http.StatusOK, "usage", usageOf(ctx, sess, kind, ns, name))
}

// spanText prints a plot's time span: "60 min", "3 min".
func spanText(d time.Duration) string {
	return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
}
