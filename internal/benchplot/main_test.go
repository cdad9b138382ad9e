package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	figs, err := read(strings.NewReader("# c\ntargets,a,2,4,ms,lower\nlatency,b,1.5,,ms,lower\n"))
	if err != nil || len(figs) != 2 || figs[0].target != 4 || !figs[0].lowerIsBetter || figs[1].target != 0 {
		t.Fatalf("read: %+v, %v", figs, err)
	}
	for in, want := range map[string]string{
		"targets,a,x,4,ms,lower\n":    `value "x"`,
		"targets,a,1,-4,ms,lower\n":   `target "-4"`,
		"targets,a,1,4,ms,sideways\n": `better "sideways"`,
		"targets,a,1\n":               "wrong number of fields",
		"# nothing\n":                 "no figures",
	} {
		if _, err := read(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("read(%q): %v, want %q", in, err, want)
		}
	}
}

// The committed data file draws: every chart is written.
func TestRunDrawsTheCommittedFigures(t *testing.T) {
	out := t.TempDir()
	if err := run(filepath.Join("..", "..", "docs", "plots", "figures.csv"), out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"targets.png", "latency.png"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := run(filepath.Join(t.TempDir(), "absent.csv"), out); err == nil {
		t.Error("a missing data file drew")
	}
}
