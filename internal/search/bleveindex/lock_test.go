package bleveindex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second Open of an index another holder has open fails within about
// lockWait, wraps ErrLocked and names the holder; after the holder closes,
// Open succeeds.
func TestOpenLockedNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "search")
	first, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := Open(path)
	if err == nil {
		second.Close()
		t.Fatal("second Open succeeded while the index was held")
	}
	if d := time.Since(start); d > 3*lockWait {
		t.Errorf("second Open took %v to fail", d)
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error %q: want ErrLocked naming pid %d", err, os.Getpid())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".owner"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("owner file left after Close: %v", err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	again.Close()
}
