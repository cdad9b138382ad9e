// Command hello-wasm is a WASI program: it greets, prints its arguments and
// an environment variable, counts a few seconds and exits 0.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Printf("hello from wasm: args=%q GREETING=%q\n", os.Args[1:], os.Getenv("GREETING"))
	for i := 1; i <= 3; i++ {
		time.Sleep(time.Second)
		fmt.Printf("tick %d\n", i)
	}
	fmt.Fprintln(os.Stderr, "done")
}
