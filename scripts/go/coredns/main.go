// A CoreDNS with only the plugins the local node's cluster DNS uses, compiled the way CoreDNS
// documents for custom servers (set dnsserver.Directives, import the plugins, call
// coremain.Run). The full plugin set pulls in every cloud SDK; this builds in a fraction of the
// time. There is no `forward` plugin on purpose: pods resolve the cluster zone only.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	dnsserver.Directives = []string{
		"errors", "log", "health", "ready", "kubernetes", "cache", "loop", "reload", "loadbalance",
	}
}

func main() { coremain.Run() }
