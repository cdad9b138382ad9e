package examples

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/internal/metrics"
)

// TestGrafanaDashboard: the Grafana dashboard is JSON, and every kyb family
// its queries name is one kyb exports (and every one exported is plotted).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("monitoring/grafana-kyb.json.example")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-kyb.json.example: %v", err)
	}
	exported := metrics.FamilyNames()
	used := map[string]bool{}
	re := regexp.MustCompile(`\bkyb_[a-z_]+`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(exported, base) {
						name = base
					}
				}
				if !slices.Contains(exported, name) {
					t.Errorf("panel %q queries %s, which kyb does not export", p.Title, name)
				}
				used[name] = true
			}
		}
	}
	for _, name := range exported {
		if !used[name] {
			t.Errorf("family %s is on no panel", name)
		}
	}
}

// TestPrometheusConfig: the scrape config is YAML naming the default
// /metrics addresses of the server and of an agent.
func TestPrometheusConfig(t *testing.T) {
	b, err := os.ReadFile("monitoring/prometheus.yml.example")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml.example: %v", err)
	}
	targets := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[sc.JobName] = tg
			}
		}
	}
	if targets["kyb-server"] != "127.0.0.1:9363" || targets["kyb-agent"] != "127.0.0.1:10255" {
		t.Fatalf("scrape targets %v, want kyb-server 127.0.0.1:9363 and kyb-agent 127.0.0.1:10255", targets)
	}
}
