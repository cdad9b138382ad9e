// Command svcprog is the services test's program: "serve NAME PORT" answers
// NAME over HTTP on PORT; "fetch URL N" gets URL N times, each on a new
// connection with a fresh name lookup (the system resolver: resolv.conf's
// nameserver, search and ndots), and prints each answer or error on a line.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: svcprog serve NAME PORT | fetch URL N")
		os.Exit(64)
	}
	switch os.Args[1] {
	case "serve":
		err := http.ListenAndServe(":"+os.Args[3], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, os.Args[2])
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "fetch":
		n, _ := strconv.Atoi(os.Args[3])
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range n {
			resp, err := c.Get(os.Args[2])
			if err != nil {
				fmt.Println("error:", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Println(string(b))
		}
	}
}
