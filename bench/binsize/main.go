// Command binsize says where the bytes of a Go binary go: the sizes of its
// symbols (the table `go tool nm -size -sort size` prints) summed by the
// module that defines them, largest first, as a Markdown table. Given two
// binaries it prints both columns and the difference, module by module.
//
//	go build -trimpath -tags nomsgpack -o /tmp/usersvc ./cmd/usersvc
//	go run ./bench/binsize -top 30 /tmp/usersvc
//	go run ./bench/binsize /tmp/usersvc-before /tmp/usersvc-after
//
// The binary must keep its symbol table: build it as `make build` does but
// without -ldflags='-s -w' (the symbols are the same; the stripped file
// lacks only the table that names them). Symbols in .bss and .noptrbss are
// left out: they take memory, not room in the file (go tool nm lists them,
// e.g. FIPS's 32 MiB DRBG buffer). The symbols add up to about half of the
// stripped file; most of the rest is the pc-line table (.gopclntab), which
// grows with the code, so a module's share of the symbols is about its
// share of the file.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

func main() {
	top := flag.Int("top", 40, "modules to list (the rest are summed in one row)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: binsize [-top N] BINARY [AFTER]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	var sizes []map[string]int64
	for _, path := range flag.Args() {
		s, err := moduleSizes(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "binsize:", err)
			os.Exit(1)
		}
		sizes = append(sizes, s)
	}
	writeTable(os.Stdout, sizes, *top)
}

// writeTable prints one row per module, largest (in any column) first, the
// first top of them, then the rest summed and the total.
func writeTable(w io.Writer, sizes []map[string]int64, top int) {
	largest := map[string]int64{}
	totals := make([]int64, len(sizes))
	for i, s := range sizes {
		for m, n := range s {
			largest[m] = max(largest[m], n)
			totals[i] += n
		}
	}
	mods := make([]string, 0, len(largest))
	for m := range largest {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool {
		if largest[mods[i]] != largest[mods[j]] {
			return largest[mods[i]] > largest[mods[j]]
		}
		return mods[i] < mods[j]
	})
	row := func(name string, vals []int64) {
		fmt.Fprintf(w, "| %s |", name)
		for _, v := range vals {
			fmt.Fprintf(w, " %.2f |", float64(v)/1e6)
		}
		if len(vals) == 2 {
			fmt.Fprintf(w, " %+.2f |", float64(vals[1]-vals[0])/1e6)
		}
		fmt.Fprintln(w)
	}
	if len(sizes) == 2 {
		fmt.Fprintln(w, "| module | before (MB) | after (MB) | change |\n|---|---:|---:|---:|")
	} else {
		fmt.Fprintln(w, "| module | symbols (MB) |\n|---|---:|")
	}
	rest := make([]int64, len(sizes))
	for k, m := range mods {
		vals := make([]int64, len(sizes))
		for i, s := range sizes {
			vals[i] = s[m]
		}
		if k < top {
			row(m, vals)
			continue
		}
		for i := range vals {
			rest[i] += vals[i]
		}
	}
	if len(mods) > top {
		row(fmt.Sprintf("%d other modules", len(mods)-top), rest)
	}
	row("**all symbols**", totals)
}
