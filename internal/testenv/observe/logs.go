package observe

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

// VictoriaLogs is a running VictoriaLogs.
type VictoriaLogs struct {
	URL string
}

// StartVictoriaLogs starts USERSVC_TEST_VICTORIALOGS_BIN
// (scripts/opstools.sh victoria-logs) on a free port with its data in a
// temporary directory.
func StartVictoriaLogs(t testing.TB) *VictoriaLogs {
	t.Helper()
	bin := binary(t, "USERSVC_TEST_VICTORIALOGS_BIN")
	addr := freeAddrs(t, 1)[0]
	s := start(t, "victoria-logs", bin, []string{"-httpListenAddr=" + addr,
		"-storageDataPath=" + filepath.Join(t.TempDir(), "data"), "-loggerLevel=WARN"}, nil)
	s.waitOK(t, "http://"+addr+"/health", 30*time.Second)
	return &VictoriaLogs{URL: "http://" + addr}
}

// Query runs a LogsQL query and returns the matching entries.
func (v *VictoriaLogs) Query(q string) ([]map[string]string, error) {
	resp, err := http.Get(v.URL + "/select/logsql/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("victoria-logs: query %q: %s", q, resp.Status)
	}
	var out []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("victoria-logs: %w: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// StartLogShipper runs USERSVC_TEST_OTELCOL_BIN (scripts/opstools.sh
// otelcol) with deploy/otelcol/logs.yaml, tailing files (a glob) into the
// OTLP logs endpoint.
func StartLogShipper(t testing.TB, files, endpoint string) {
	t.Helper()
	bin := binary(t, "USERSVC_TEST_OTELCOL_BIN")
	cfg := filepath.Join(RepoRoot(t), "deploy", "otelcol", "logs.yaml")
	start(t, "otelcol", bin, []string{"--config=file:" + cfg},
		[]string{"USERSVC_LOG_FILES=" + files, "LOGS_OTLP_ENDPOINT=" + endpoint})
}
