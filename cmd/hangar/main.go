// Command hangar is Hangar's one binary: the server (hangar server), the
// node agent (hangar agent, started by node providers) and the CLI (every
// other command). It only hands its arguments to package cli.
package main

import (
	"os"

	"github.com/hangar-ml/hangar/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
