// Package obstest checks the observability files of deploy/ offline with
// libraries the service itself must not depend on: every Grafana dashboard
// is decoded strictly with the Grafana foundation SDK and every panel
// query parsed with Prometheus' PromQL parser. The queries themselves run
// against a real Prometheus in the end-to-end suite (e2e/dashboards_test.go).
package obstest
