// Package deploytest checks the deployment artefacts — Dockerfile,
// deploy/compose, deploy/k8s, deploy/nginx — with the tools that read them
// (buildkit's Dockerfile frontend, compose-go, kustomize and a real
// kube-apiserver), as a module of its own so that those dependencies never
// enter the service's go.mod. It holds no code outside its tests.
package deploytest
