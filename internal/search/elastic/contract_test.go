package elastic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/search/searchtest"
)

// TestContract runs the contract suite against a real Elasticsearch 8 at
// USERSVC_TEST_ELASTICSEARCH_URL (credentials may be in the URL:
// http://elastic:secret@localhost:9200). Each subtest gets its own index,
// deleted afterwards.
//
// The skip is deliberate and does not go through testenv.Need: no CI
// machine of this project can run Elasticsearch, so a missing URL is the
// normal case, not a misconfiguration. Without it the adapter is covered
// only by the body unit tests and the protocol-level fake, which check what
// it sends, not what Elasticsearch does with it.
func TestContract(t *testing.T) {
	url := os.Getenv("USERSVC_TEST_ELASTICSEARCH_URL")
	if url == "" {
		t.Skip("USERSVC_TEST_ELASTICSEARCH_URL not set: no Elasticsearch here")
	}
	searchtest.Run(t, func(t *testing.T) search.Index {
		b := make([]byte, 6)
		rand.Read(b)
		name := "usersvc-test-" + hex.EncodeToString(b)
		// refresh=true: the suite searches right after writing.
		x, err := New(url, name, WithRefresh("true"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := x.do(ctx, http.MethodDelete, "", nil, nil, "")
			if err != nil {
				t.Errorf("delete test index %s: %v", name, err)
			} else {
				res.Body.Close()
				if res.IsError() {
					t.Errorf("delete test index %s: %s", name, res.Status)
				}
			}
			x.Close()
		})
		if err := x.EnsureIndex(t.Context()); err != nil {
			t.Fatalf("EnsureIndex: %v", err)
		}
		if err := x.EnsureIndex(t.Context()); err != nil {
			t.Fatalf("EnsureIndex on the existing index: %v", err)
		}
		return x
	})
}
