package apiserver_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/internal/testutil"
)

// example is one ```sh block of docs/api.md and the ```text block after it:
// lines that must each appear in the command's output.
type example struct {
	line   int
	script string
	want   []string
}

func docExamples(t *testing.T, path string) []example {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []example
	var cur *strings.Builder
	var curLine int
	inText := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && !inText && l == "```sh":
			cur, curLine = &strings.Builder{}, n
		case cur != nil && l == "```":
			out = append(out, example{line: curLine, script: cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		case !inText && l == "```text" && len(out) > 0:
			inText = true
		case inText && l == "```":
			inText = false
		case inText && strings.TrimSpace(l) != "":
			out[len(out)-1].want = append(out[len(out)-1].want, strings.TrimSpace(l))
		}
	}
	return out
}

// TestDocExamplesWithNatsCLI runs every example of docs/api.md, verbatim and
// in order, with the real nats CLI against a real server.
func TestDocExamplesWithNatsCLI(t *testing.T) {
	nats := testutil.NatsCLI(t)
	e := newEnv(t)
	examples := docExamples(t, "../../docs/api.md")
	if len(examples) < 10 {
		t.Fatalf("found only %d examples in docs/api.md", len(examples))
	}
	path := filepath.Dir(nats) + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, ex := range examples {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", ex.script)
		cmd.Env = append(os.Environ(), "NATS_URL="+e.ns.ClientURL(), "PATH="+path, "NATS_CONTEXT=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("docs/api.md:%d: %v\n$ %s%s", ex.line, err, ex.script, out)
			continue
		}
		for _, w := range ex.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("docs/api.md:%d: output lacks %q\n$ %s%s", ex.line, w, ex.script, out)
			}
		}
	}
}
