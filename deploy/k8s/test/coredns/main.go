// Command coredns is the cluster DNS of deploy/deploytest's single-node
// Kubernetes: CoreDNS with only the plugins that cluster's Corefile uses,
// so it builds in a fraction of the full distribution's time. The order of
// Directives is CoreDNS's own (plugin.cfg), which decides the order a
// query passes through the plugins.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins of the test cluster's Corefile, each registering itself.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes", "loop", "forward"}
}

func main() { coremain.Run() }
