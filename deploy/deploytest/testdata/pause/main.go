// Command pause is the pod sandbox image's process for the test cluster
// (no registry is reachable for registry.k8s.io/pause): it holds the pod's
// namespaces and waits for the signal that ends the pod.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
