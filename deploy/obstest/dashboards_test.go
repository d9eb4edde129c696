package obstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
)

// e2eNames is the pattern by which e2e/dashboards_test.go finds the series
// a query names to check them against a real scrape: every selector the
// parser finds must match it, or that check would miss a name.
var e2eNames = regexp.MustCompile(`^(usersvc:[a-z0-9_:]+|(?:usersvc|go|process)_[a-z0-9_]+)$`)

// failed reports a real error: the SDK returns a non-nil empty error when
// all is well.
func failed(err error) bool { return err != nil && err.Error() != "" }

func TestDashboardsDecodeStrictlyAndParse(t *testing.T) {
	files, err := filepath.Glob("../grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The provisioned files are the classic dashboard JSON Grafana 11
		// loads from disk; dashboardv2 is the newer, different schema.
		//lint:ignore SA1019 the files are v1 dashboards on purpose
		var d dashboard.Dashboard
		if err := d.UnmarshalJSONStrict(raw); failed(err) {
			t.Errorf("%s: %v", f, err)
		} else if err := d.Validate(); failed(err) {
			t.Errorf("%s: %v", f, err)
		}
		// The strict dashboard decode drops panels: decode each one.
		var doc struct {
			Panels []map[string]json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Panels) == 0 {
			t.Errorf("%s: no panels", f)
		}
		for i, fields := range doc.Panels {
			targets := fields["targets"]
			delete(fields, "targets") // decoded below, as Prometheus queries
			b, _ := json.Marshal(fields)
			var panel dashboard.Panel
			if err := panel.UnmarshalJSONStrict(b); failed(err) {
				t.Errorf("%s panel %d: %v", f, i, err)
				continue
			}
			if err := panel.Validate(); failed(err) {
				t.Errorf("%s panel %d: %v", f, i, err)
			}
			if panel.Description == nil || *panel.Description == "" {
				t.Errorf("%s panel %d: no description", f, i)
			}
			var ts []json.RawMessage
			if err := json.Unmarshal(targets, &ts); err != nil || len(ts) == 0 {
				t.Errorf("%s panel %d: no targets (%v)", f, i, err)
			}
			for _, traw := range ts {
				var q prometheus.Dataquery
				if err := q.UnmarshalJSONStrict(traw); failed(err) {
					t.Errorf("%s panel %d: target: %v", f, i, err)
					continue
				}
				if err := q.Validate(); failed(err) {
					t.Errorf("%s panel %d: target: %v", f, i, err)
				}
				expr, err := p.ParseExpr(q.Expr)
				if err != nil {
					t.Errorf("%s panel %d: %q: %v", f, i, q.Expr, err)
					continue
				}
				for _, vs := range parser.ExtractSelectors(expr) {
					for _, m := range vs {
						if m.Name == "__name__" && !e2eNames.MatchString(m.Value) {
							t.Errorf("%s panel %d: series %q escapes the e2e scrape check", f, i, m.Value)
						}
					}
				}
			}
		}
	}
}
