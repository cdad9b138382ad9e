package dashboard

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestPlotSVG(t *testing.T) {
	now := time.Now()
	series := func(vals ...float64) []api.UsagePoint {
		var s []api.UsagePoint
		for i, v := range vals {
			s = append(s, api.UsagePoint{Time: now.Add(time.Duration(i-len(vals)+1) * 10 * time.Second), MemoryBytes: uint64(v)})
		}
		return s
	}
	mem := func(p api.UsagePoint) float64 { return float64(p.MemoryBytes) }
	format := func(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }
	num := regexp.MustCompile(`-?[0-9]+(\.[0-9]+)?,-?[0-9]+(\.[0-9]+)?`)
	tests := []struct {
		name         string
		s            []api.UsagePoint
		limit        float64
		label        string
		line, limit_ bool
	}{
		{"empty", nil, 0, "memory", false, false},
		{"a series", series(1, 5, 3), 0, "memory", true, false},
		{"limit within", series(10, 20), 24, "memory", true, true},
		{"limit far above", series(10, 20), 1000, "memory", true, false},
		{"hostile label", series(1), 0, `<script>alert(1)</script>`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(plotSVG(tt.s, now, mem, tt.limit, tt.label, format))
			if strings.Contains(svg, "<script") {
				t.Fatalf("the label reached the SVG unescaped: %s", svg)
			}
			if got := strings.Contains(svg, "<polyline"); got != tt.line {
				t.Fatalf("polyline %v, want %v: %s", got, tt.line, svg)
			}
			if got := strings.Contains(svg, "plot-limit"); got != tt.limit_ {
				t.Fatalf("limit line %v, want %v: %s", got, tt.limit_, svg)
			}
			for _, pt := range num.FindAllString(svg, -1) {
				xs, ys, _ := strings.Cut(pt, ",")
				x, _ := strconv.ParseFloat(xs, 64)
				y, _ := strconv.ParseFloat(ys, 64)
				if x < 0 || x > plotW || y < 0 || y > plotH {
					t.Fatalf("point %s outside the %gx%g box: %s", pt, plotW, plotH, svg)
				}
			}
		})
	}
}
