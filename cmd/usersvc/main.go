// Command usersvc runs every role of the user service platform; see
// `usersvc --help` and the README.
package main

import (
	"os"

	"github.com/usersvc/usersvc/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
