// Command benchplot draws the main benchmark figures (docs/plots/figures.csv,
// kept beside BENCHMARKS.md's summary) as PNG charts into docs/plots/:
// targets.png, each measured figure against its target as a ratio (above 1:
// better than the target, whichever way "better" points), and one bar chart
// per other chart name (latency.png, ...). Run by `go tool task plots`.
package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// figure is one row of the data file.
type figure struct {
	chart, label  string
	value, target float64 // target 0: none
	unit          string
	lowerIsBetter bool
}

func main() {
	in, out := "docs/plots/figures.csv", "docs/plots"
	if len(os.Args) == 3 {
		in, out = os.Args[1], os.Args[2]
	}
	if err := run(in, out); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	figs, err := read(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	charts := map[string][]figure{}
	var order []string
	for _, fg := range figs {
		if _, ok := charts[fg.chart]; !ok {
			order = append(order, fg.chart)
		}
		charts[fg.chart] = append(charts[fg.chart], fg)
	}
	for _, name := range order {
		var p *plot.Plot
		if name == "targets" {
			p, err = ratioChart(charts[name])
		} else {
			p, err = barChart(name, charts[name])
		}
		if err != nil {
			return fmt.Errorf("chart %s: %w", name, err)
		}
		path := filepath.Join(out, name+".png")
		h := vg.Length(len(charts[name]))*0.35*vg.Inch + 1.2*vg.Inch
		if err := p.Save(9*vg.Inch, h, path); err != nil {
			return fmt.Errorf("save %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// read parses the data file: comment lines start with #; rows are
// chart,label,value,target,unit,better.
func read(r io.Reader) ([]figure, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 6
	var out []figure
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		v, err := strconv.ParseFloat(rec[2], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value %q: %w", line, rec[2], err)
		}
		var tgt float64
		if rec[3] != "" {
			if tgt, err = strconv.ParseFloat(rec[3], 64); err != nil || tgt <= 0 {
				return nil, fmt.Errorf("line %d: target %q: want a positive number", line, rec[3])
			}
		}
		if rec[5] != "lower" && rec[5] != "higher" {
			return nil, fmt.Errorf("line %d: better %q: want lower or higher", line, rec[5])
		}
		out = append(out, figure{chart: rec[0], label: rec[1], value: v, target: tgt, unit: rec[4], lowerIsBetter: rec[5] == "lower"})
	}
	if len(out) == 0 {
		return nil, errors.New("no figures")
	}
	return out, nil
}

// ratioChart draws how far each figure is from its target: target/value
// for a ceiling, value/target for a floor; 1 is the target itself.
func ratioChart(figs []figure) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Measured against target: bars right of x1 meet it"
	p.X.Label.Text = "times better than the target (log scale)"
	p.X.Tick.Marker = ratioTicks{}
	vals := make(plotter.Values, len(figs))
	names := make([]string, len(figs))
	for i, fg := range figs {
		if fg.target == 0 || fg.value <= 0 {
			return nil, fmt.Errorf("%s: a targets row needs a positive value and a target", fg.label)
		}
		r := fg.value / fg.target
		if fg.lowerIsBetter {
			r = fg.target / fg.value
		}
		vals[len(figs)-1-i] = math.Log10(r) // 0 is the target; bars grow from it
		names[len(figs)-1-i] = fmt.Sprintf("%s: %s%s (target %s)", fg.label, num(fg.value), fg.unit, num(fg.target))
	}
	// Met in green, missed in red: two bar sets, each zero where the
	// other has its bar.
	met, missed := make(plotter.Values, len(vals)), make(plotter.Values, len(vals))
	for i, v := range vals {
		if v >= 0 {
			met[i] = v
		} else {
			missed[i] = v
		}
	}
	for _, set := range []struct {
		vals  plotter.Values
		color color.RGBA
	}{{met, color.RGBA{R: 46, G: 139, B: 87, A: 255}}, {missed, color.RGBA{R: 200, G: 40, B: 40, A: 255}}} {
		bars, err := plotter.NewBarChart(set.vals, vg.Points(10))
		if err != nil {
			return nil, err
		}
		bars.Horizontal = true
		bars.Color = set.color
		bars.LineStyle.Width = 0
		p.Add(bars)
	}
	p.NominalY(names...)
	p.X.Min = math.Min(-0.5, p.X.Min)
	return p, nil
}

// ratioTicks label a log10 axis with the ratios: x0.3, x1, x3, x10, ...
type ratioTicks struct{}

func (ratioTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(min); e <= math.Ceil(max); e++ {
		for _, m := range []float64{1, 3} {
			v := e + math.Log10(m)
			if v < min || v > max {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: "x" + strconv.FormatFloat(m*math.Pow(10, e), 'g', 3, 64)})
		}
	}
	return ticks
}

// barChart draws a chart's figures as bars of one unit.
func barChart(name string, figs []figure) (*plot.Plot, error) {
	p := plot.New()
	unit := figs[0].unit
	for _, fg := range figs {
		if fg.unit != unit {
			return nil, fmt.Errorf("%s: unit %s differs from %s: one unit per chart", fg.label, fg.unit, unit)
		}
	}
	p.Title.Text = strings.ToUpper(name[:1]) + name[1:] + " (" + unit + ")"
	vals := make(plotter.Values, len(figs))
	names := make([]string, len(figs))
	for i, fg := range figs {
		vals[len(figs)-1-i] = fg.value
		names[len(figs)-1-i] = fmt.Sprintf("%s: %s %s", fg.label, num(fg.value), fg.unit)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(10))
	if err != nil {
		return nil, err
	}
	bars.Horizontal = true
	p.Add(bars)
	p.NominalY(names...)
	p.X.Min = 0
	return p, nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
