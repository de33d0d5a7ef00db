// Command kfn is the one binary of kfn: the operator (manager), the REST
// facade (apiserver), a test JWT minter (jwt) and the in-pod runner (run,
// copy-self).
package main

import (
	"fmt"
	"os"

	_ "time/tzdata" // schedules name IANA time zones; images may lack tzdata

	"github.com/kfn-dev/kfn/internal/runner"
)

const usage = `usage: kfn <command> [flags]

commands:
  manager     run the operator (Function and Execution controllers)
  apiserver   serve the Appwrite Functions executions REST API (the facade)
  jwt         mint a user JWT the facade accepts (for tests)
  run         run a function's command inside its pod (used by the Job)
  copy-self   copy this binary to a path (used by the Job's init container)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "manager":
		os.Exit(runManager(args))
	case "apiserver":
		os.Exit(runAPIServer(args))
	case "jwt":
		os.Exit(runJWT(args, os.Stdout, os.Stderr))
	case "run":
		os.Exit(runner.Main(args, os.Stdout, os.Stderr))
	case "copy-self":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: kfn copy-self DEST")
			os.Exit(2)
		}
		if err := runner.CopySelf(args[0]); err != nil {
			fmt.Fprintln(os.Stderr, "kfn copy-self:", err)
			os.Exit(1)
		}
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "kfn: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
