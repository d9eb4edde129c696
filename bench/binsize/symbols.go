package main

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"strings"
)

// Names of the rows that are not a module.
const (
	stdlib    = "std (the Go standard library and runtime)"
	funcdata  = "go:func.* (the functions' GC and stack maps, every module's)"
	anonymous = "anonymous and generic shape types"
)

// moduleSizes sums the sizes of the symbols of the ELF binary at path by the
// module that defines each (stdlib, funcdata or the row of an unmatched
// name when none does). Symbols in sections that take no room in the file
// (.bss, .noptrbss) are left out.
func moduleSizes(path string) (map[string]int64, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: build info: %w", path, err)
	}
	mods := []string{bi.Main.Path}
	for _, d := range bi.Deps {
		mods = append(mods, d.Path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: symbols (build without -ldflags=-s): %w", path, err)
	}
	sizes := map[string]int64{}
	for _, s := range syms {
		if s.Size == 0 || s.Section == elf.SHN_UNDEF || int(s.Section) >= len(f.Sections) ||
			f.Sections[s.Section].Type == elf.SHT_NOBITS {
			continue
		}
		sizes[moduleOf(symbolOwner(s.Name), mods)] += int64(s.Size)
	}
	return sizes, nil
}

// symbolOwner is the name with the prefixes that precede a package path
// taken off: "type:*github.com/redis/go-redis/v9.Client" and
// "go:itab.*github.com/x.T,io.Reader" (an itab belongs to its concrete type)
// start with their package, as "github.com/redis/go-redis/v9.(*Client).Get"
// does.
func symbolOwner(name string) string {
	if strings.HasPrefix(name, "go:func.") {
		return funcdataPrefix
	}
	for _, p := range []string{"type:", "go:itab.", "go:"} {
		name = strings.TrimPrefix(name, p)
	}
	name = strings.TrimLeft(name, "*(")
	for _, p := range []string{".eq.", ".hash.", ".gcmask."} { // generated per type
		name = strings.TrimPrefix(name, p)
	}
	return strings.ReplaceAll(name, "%2e", ".") // "nats%2ego" is nats.go
}

const funcdataPrefix = "go:func"

// moduleOf is the longest of mods (the main module first) that the symbol
// owner names (followed by "." or "/"); stdlib when the first path element
// has no dot (vendored copies in the standard library included), anonymous
// for anonymous and generic shape types.
func moduleOf(owner string, mods []string) string {
	if owner == funcdataPrefix {
		return funcdata
	}
	if strings.HasPrefix(owner, "main.") {
		return mods[0]
	}
	best := ""
	for _, m := range mods {
		if len(m) > len(best) && strings.HasPrefix(owner, m) && len(owner) > len(m) &&
			(owner[len(m)] == '.' || owner[len(m)] == '/') {
			best = m
		}
	}
	switch {
	case best != "":
		return best
	case strings.HasPrefix(owner, "go.shape.") || strings.ContainsAny(owner[:1], "[{") ||
		hasAnyPrefix(owner, "struct {", "interface {", "func(", "map[", "chan "):
		return anonymous
	}
	// Before type arguments and such: a standard package's path has no dot
	// in its first element ("net/http.", "slices.SortFunc" with no slash).
	head := owner
	if i := strings.IndexAny(head, " [({,"); i >= 0 {
		head = head[:i]
	}
	if first, _, found := strings.Cut(head, "/"); !found || !strings.Contains(first, ".") {
		return stdlib
	}
	return head + " (no module)"
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
