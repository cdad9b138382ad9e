// Package prog interprets the verbs of the conformance test program: the
// same behaviour runs as a real program (runtimes/runtimetest/testprog,
// built for wasip1 or linux) and inside the fake runtime, so one suite
// drives every runtime.
//
// A program's arguments are a sequence of verbs, run left to right:
//
//	out TEXT        print TEXT and a newline to stdout
//	err TEXT        print TEXT and a newline to stderr
//	env NAME        print NAME=VALUE (or NAME unset) to stdout
//	args            print "args:" and every argument joined by "|"
//	cat PATH        print the file's content to stdout (exit 1 if unreadable)
//	write PATH TEXT write TEXT to the file (exit 1 if it fails)
//	alloc MIB       allocate and touch MIB mebibytes of memory
//	sleep DUR       sleep DUR (a Go duration) or "forever"
//	loop            spin the CPU forever, never sleeping
//	exit N          exit with code N
//	stdin           copy stdin to stdout until its end (each read at once)
//
// When the verbs run out the program exits 0. An unknown verb exits 64.
package prog

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Sys is what the program reaches of its world. Every field must be set.
type Sys struct {
	Getenv func(name string) (string, bool)
	Stdout io.Writer
	Stderr io.Writer
	// Stdin is the program's input; nil reads end of input at once.
	Stdin     io.Reader
	ReadFile  func(path string) ([]byte, error)
	WriteFile func(path string, data []byte) error
	// Sleep sleeps d, returning early (false) when the program is stopped.
	Sleep func(d time.Duration) bool
}

// Stopped is the exit code Run returns when ctx ends while the program
// sleeps or spins (only the fake runtime can stop a program this way).
const Stopped = 137

var sink []byte

// Run runs the verbs in args and returns the exit code. ctx stops sleep and
// loop; a real program passes context.Background().
func Run(ctx context.Context, args []string, s Sys) int {
	all := args
	need := func(i, n int) bool {
		if i+n >= len(args) {
			fmt.Fprintf(s.Stderr, "%s: needs %d argument(s)\n", args[i], n)
			return false
		}
		return true
	}
	for i := 0; i < len(args); i++ {
		switch verb := args[i]; verb {
		case "out", "err":
			if !need(i, 1) {
				return 64
			}
			w := s.Stdout
			if verb == "err" {
				w = s.Stderr
			}
			fmt.Fprintln(w, args[i+1])
			i++
		case "env":
			if !need(i, 1) {
				return 64
			}
			if v, ok := s.Getenv(args[i+1]); ok {
				fmt.Fprintf(s.Stdout, "%s=%s\n", args[i+1], v)
			} else {
				fmt.Fprintf(s.Stdout, "%s unset\n", args[i+1])
			}
			i++
		case "stdin":
			if s.Stdin != nil {
				if _, err := io.Copy(s.Stdout, s.Stdin); err != nil {
					fmt.Fprintf(s.Stderr, "stdin: %v\n", err)
					return 1
				}
			}
		case "args":
			fmt.Fprintf(s.Stdout, "args:%s\n", strings.Join(all, "|"))
		case "cat":
			if !need(i, 1) {
				return 64
			}
			b, err := s.ReadFile(args[i+1])
			if err != nil {
				fmt.Fprintf(s.Stderr, "cat: %v\n", err)
				return 1
			}
			fmt.Fprintf(s.Stdout, "%s\n", b)
			i++
		case "write":
			if !need(i, 2) {
				return 64
			}
			if err := s.WriteFile(args[i+1], []byte(args[i+2])); err != nil {
				fmt.Fprintf(s.Stderr, "write: %v\n", err)
				return 1
			}
			i += 2
		case "alloc":
			if !need(i, 1) {
				return 64
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil {
				fmt.Fprintf(s.Stderr, "alloc: %v\n", err)
				return 64
			}
			for j := 0; j < n; j++ {
				b := make([]byte, 1<<20)
				for k := 0; k < len(b); k += 4096 {
					b[k] = 1
				}
				sink = append(sink, b...)
			}
			fmt.Fprintf(s.Stdout, "allocated %d MiB\n", n)
			i++
		case "sleep":
			if !need(i, 1) {
				return 64
			}
			if args[i+1] == "forever" {
				for {
					if !s.Sleep(time.Hour) {
						return Stopped
					}
				}
			}
			d, err := time.ParseDuration(args[i+1])
			if err != nil {
				fmt.Fprintf(s.Stderr, "sleep: %v\n", err)
				return 64
			}
			if !s.Sleep(d) {
				return Stopped
			}
			i++
		case "loop":
			x := 0
			for {
				for j := 0; j < 1<<16; j++ {
					x += j
				}
				if ctx.Err() != nil {
					return Stopped + x*0
				}
			}
		case "exit":
			if !need(i, 1) {
				return 64
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil {
				fmt.Fprintf(s.Stderr, "exit: %v\n", err)
				return 64
			}
			return n
		default:
			fmt.Fprintf(s.Stderr, "unknown verb %q\n", verb)
			return 64
		}
	}
	return 0
}
