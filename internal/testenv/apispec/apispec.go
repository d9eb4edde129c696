// Package apispec loads api/openapi.yaml for the tests: the test client,
// internal/testenv/apiclient, checks every exchange against it (for
// internal/httpapi in process and for e2e through real processes), and
// internal/httpapi tests the document itself, all with the same parsed
// document and the same format validators.
package apispec

import (
	"errors"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/usersvc/usersvc/api"
)

var (
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
)

// Load returns the validated document and a router over it, built once.
func Load() (*openapi3.T, routers.Router, error) {
	once.Do(func() {
		// Check the formats the document uses, not only declare them.
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
			_, err := uuid.Parse(s)
			if err == nil && len(s) != 36 {
				err = errors.New("not in the canonical 36-character form")
			}
			return err
		}))
		loader := openapi3.NewLoader()
		d, lerr := loader.LoadFromData(api.OpenAPI)
		if lerr != nil {
			err = lerr
			return
		}
		if verr := d.Validate(loader.Context); verr != nil {
			err = verr
			return
		}
		d.Servers = nil // the server URL is relative ("/"): match any host
		doc = d
		router, err = gorillamux.NewRouter(d)
	})
	return doc, router, err
}
