package obstest

import (
	"testing"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/dns"        // dns_sd_configs of the compose config
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs of the Kubernetes config
)

// TestScrapeConfigsLoad loads both scrape configurations with Prometheus'
// own loader, Kubernetes service discovery included: Debian's promtool is
// built without it and cannot check prometheus-k8s.yml.
func TestScrapeConfigsLoad(t *testing.T) {
	for _, f := range []string{"../prometheus/prometheus.yml", "../prometheus/prometheus-k8s.yml"} {
		cfg, err := config.LoadFile(f, false, promslog.NewNopLogger())
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(cfg.ScrapeConfigs) == 0 || len(cfg.RuleFiles) != 2 {
			t.Errorf("%s: %d scrape configs, rule files %v", f, len(cfg.ScrapeConfigs), cfg.RuleFiles)
		}
	}
}
