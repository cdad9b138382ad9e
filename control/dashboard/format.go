package dashboard

import (
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"age":      age,
	"join":     strings.Join,
	"labels":   labelText,
	"quantity": func(q resource.Quantity) string { return q.String() },
	"phaseNames": func() []string {
		out := make([]string, len(phases))
		for i, p := range phases {
			out[i] = string(p)
		}
		return out
	},
	// act is what an action form needs: the page's CSRF token and path,
	// and the object.
	"act": func(c common, kind, namespace, name string) map[string]string {
		return map[string]string{"CSRF": c.CSRF, "Back": c.Back, "Kind": kind, "Namespace": namespace, "Name": name}
	},
}

// age prints how long ago t was, as kubectl does: 12s, 5m, 3h, 2d.
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func labelText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// podStatus is the STATUS column of `kubectl get pods`: the phase, or the
// reason a container waits or ended, or Terminating.
func podStatus(p *api.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	status := string(p.Status.Phase)
	if status == "" {
		status = string(api.PodPending)
	}
	if p.Status.Reason != "" {
		status = p.Status.Reason
	}
	for i, cs := range p.Status.InitContainerStatuses {
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case cs.State.Terminated != nil:
			return "Init:" + orDefault(cs.State.Terminated.Reason, "Error")
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			return "Init:" + cs.State.Waiting.Reason
		default:
			return fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			status = cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			status = cs.State.Terminated.Reason
		case cs.State.Terminated != nil:
			status = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
		}
	}
	return status
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// podReady is "ready/total" of a pod's containers.
func podReady(p *api.Pod) string {
	ready := 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
}

func podRestarts(p *api.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// milli prints millicores as a CPU quantity (250m, 2).
func milli(m int64) string { return resource.NewMilliQuantity(m, resource.DecimalSI).String() }

// bytesText prints bytes as a short memory quantity: 64Mi, 23.3Gi.
func bytesText(b int64) string {
	const ki, mi, gi, ti = 1 << 10, 1 << 20, 1 << 30, 1 << 40
	short := func(v float64, unit string) string {
		s := strconv.FormatFloat(v, 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + unit
	}
	switch {
	case b >= ti:
		return short(float64(b)/ti, "Ti")
	case b >= gi:
		return short(float64(b)/gi, "Gi")
	case b >= mi:
		return short(float64(b)/mi, "Mi")
	case b >= ki:
		return short(float64(b)/ki, "Ki")
	}
	return strconv.FormatInt(b, 10)
}

// percent is "n%" of used in total, "" when total is 0.
func percent(used, total int64) string {
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf("%d%%", used*100/total)
}

func conditionText(status api.ConditionStatus, reason string) string {
	if reason == "" {
		return string(status)
	}
	return string(status) + " (" + reason + ")"
}
