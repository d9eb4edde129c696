package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/testenv/observe"
)

// metricName finds the series names an expression reads: ours, the Go and
// process collectors', the database pool's, and our recording rules'.
var metricName = regexp.MustCompile(`\b(usersvc:[a-z0-9_:]+|(?:usersvc|go|process)_[a-z0-9_]+)\b`)

// checkDashboards runs every panel query of deploy/grafana/dashboards
// against the end-to-end Prometheus (an error fails the test), checks that
// every series it names is one the processes export (from Prometheus'
// real scrape) or a recording rule, and that every panel says what a bad
// value means. The dashboards are not rendered: no Grafana runs here.
func checkDashboards(t *testing.T, prom *observe.Prometheus) {
	t.Helper()
	root := observe.RepoRoot(t)
	exported := scrapedNames(t, prom)
	rules, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/rules/recording.yml"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "deploy/grafana/dashboards/*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	queries := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title  string `json:"title"`
			Panels []struct {
				Title, Description string
				Targets            []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			if len(p.Description) < 40 || !strings.Contains(p.Description, "Bad") {
				t.Errorf("%s / %s: the description does not say what a bad value means", d.Title, p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				if _, err := prom.Query(tg.Expr); err != nil {
					t.Errorf("%s / %s: %v", d.Title, p.Title, err)
				}
				for _, name := range metricName.FindAllString(tg.Expr, -1) {
					if strings.Contains(name, ":") {
						if !strings.Contains(string(rules), "record: "+name+"\n") {
							t.Errorf("%s / %s: %s is no recording rule", d.Title, p.Title, name)
						}
					} else if why, ok := notHere[name]; ok && !exported[name] {
						t.Logf("%s / %s: %s not checked: exported only with %s, which does not run here", d.Title, p.Title, name, why)
					} else if !exported[name] {
						t.Errorf("%s / %s: %s is not exported by any process", d.Title, p.Title, name)
					}
				}
			}
		}
	}
	t.Logf("%d dashboards, %d panel queries run against Prometheus", len(files), queries)
}

// notHere are the series only a component that cannot run here exports.
var notHere = map[string]string{
	"usersvc_search_index_writes_total": "Elasticsearch (the worker's indexer)",
}

// scrapedNames are the series names Prometheus has scraped.
func scrapedNames(t *testing.T, prom *observe.Prometheus) map[string]bool {
	t.Helper()
	resp, err := http.Get(prom.URL + "/api/v1/label/__name__/values")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range body.Data {
		out[n] = true
	}
	return out
}
