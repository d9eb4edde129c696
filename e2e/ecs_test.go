package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/observe"
)

// checkECSMapping checks every field of every log line of procs against
// the mapping of deploy/elk/index-template.json, as Elasticsearch would
// index them: each field must be mapped (the template is not dynamic), its
// value must fit the mapped type (a wrong type is a mapping conflict that
// drops the line in production), and no field may be both a value and an
// object ("service" and "service.name").
func checkECSMapping(t *testing.T, procs []*cluster.Proc) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(observe.RepoRoot(t), "deploy/elk/index-template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Template struct {
			Mappings struct {
				Properties map[string]mappingNode `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatalf("index template: %v", err)
	}
	types := map[string]string{}
	flattenMapping("", tmpl.Template.Mappings.Properties, types)
	seen := map[string]bool{}
	for _, p := range procs {
		data, err := os.ReadFile(p.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue // checkLogLines reports it
			}
			fields := map[string]any{}
			flattenDoc("", m, fields)
			for k, v := range fields {
				seen[k] = true
				typ, ok := types[k]
				if !ok {
					t.Errorf("%s: field %q is not in the index template: %s", p.Name(), k, line)
					continue
				}
				if err := fits(typ, v); err != nil {
					t.Errorf("%s: field %q: %v: %s", p.Name(), k, err, line)
				}
			}
		}
	}
	names := make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("log fields checked against the index template: %s", strings.Join(names, " "))
}

type mappingNode struct {
	Type       string                 `json:"type"`
	Properties map[string]mappingNode `json:"properties"`
}

func flattenMapping(prefix string, props map[string]mappingNode, out map[string]string) {
	for name, n := range props {
		if n.Properties != nil {
			flattenMapping(prefix+name+".", n.Properties, out)
			continue
		}
		out[prefix+name] = n.Type
	}
}

// flattenDoc expands a document as Elasticsearch does: dotted keys and
// nested objects both become dotted paths.
func flattenDoc(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flattenDoc(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

func fits(typ string, v any) error {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if err := fits(typ, e); err != nil {
				return err
			}
		}
		return nil
	}
	switch typ {
	case "keyword", "text":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%v (%T) into %s", v, v, typ)
		}
	case "ip":
		s, _ := v.(string)
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("%v is not an ip", v)
		}
	case "date", "date_nanos":
		s, _ := v.(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("%v is not a date", v)
		}
	case "long":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return fmt.Errorf("%v (%T) into long", v, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v (%T) into boolean", v, v)
		}
	default:
		return fmt.Errorf("mapping type %q not checked by this test", typ)
	}
	return nil
}
