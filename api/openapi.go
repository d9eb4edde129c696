// Package api holds the service's public contracts: the protobuf definition
// of the RPC service (user/v1) and the OpenAPI document of the HTTP API.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml, the OpenAPI 3.0.3 description of the HTTP
// API, embedded so the binary serves exactly the contract it was built
// against (GET /openapi.yaml).
//
//go:embed openapi.yaml
var OpenAPI []byte
