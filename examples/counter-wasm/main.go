// Command counter-wasm is a WASI program that keeps a counter in
// /data/count: each start reads it, adds one, writes it back and prints
// it, then serves nothing and sleeps. Run as a StatefulSet with a volume
// claim template (statefulset.yaml), each pod's count survives the pod:
// delete web-0 and its replacement prints the next number.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	const path = "/data/count"
	n := 0
	if b, err := os.ReadFile(path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "write %s: %v\n", path, err)
		os.Exit(1)
	}
	fmt.Printf("started %d time(s) on this volume\n", n)
	for {
		time.Sleep(time.Hour)
	}
}
