// Command fsprobe is a test module for the wasm runtime's preopened
// directories, built with GOOS=wasip1 GOARCH=wasm. Its arguments are
// verbs, each printing one line "VERB PATH: RESULT", where RESULT is "ok",
// what was read, or the errno's name (EPERM, ENOENT, ...):
//
//	symlink TARGET LINK   create LINK pointing at TARGET
//	read PATH             print PATH's content
//	write PATH TEXT       create or truncate PATH and write TEXT
//	ls PATH               list a directory
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	for len(args) > 0 {
		verb := args[0]
		switch verb {
		case "symlink":
			err := os.Symlink(args[1], args[2])
			fmt.Printf("symlink %s: %s\n", args[2], result(err))
			args = args[3:]
		case "read":
			b, err := os.ReadFile(args[1])
			if err == nil {
				fmt.Printf("read %s: %q\n", args[1], b)
			} else {
				fmt.Printf("read %s: %s\n", args[1], result(err))
			}
			args = args[2:]
		case "write":
			err := os.WriteFile(args[1], []byte(args[2]), 0o644)
			fmt.Printf("write %s: %s\n", args[1], result(err))
			args = args[3:]
		case "ls":
			es, err := os.ReadDir(args[1])
			if err != nil {
				fmt.Printf("ls %s: %s\n", args[1], result(err))
			} else {
				var names []string
				for _, e := range es {
					names = append(names, e.Name())
				}
				sort.Strings(names)
				fmt.Printf("ls %s: %s\n", args[1], strings.Join(names, ","))
			}
			args = args[2:]
		default:
			fmt.Fprintf(os.Stderr, "unknown verb %q\n", verb)
			os.Exit(2)
		}
	}
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		for _, n := range []struct {
			e    syscall.Errno
			name string
		}{
			{syscall.EPERM, "EPERM"}, {syscall.ENOENT, "ENOENT"}, {syscall.EROFS, "EROFS"},
			{syscall.EBADF, "EBADF"}, {syscall.ELOOP, "ELOOP"}, {syscall.EACCES, "EACCES"},
			{syscall.ENOTDIR, "ENOTDIR"}, {syscall.EEXIST, "EEXIST"}, {syscall.ENOSYS, "ENOSYS"},
			{syscall.EXDEV, "EXDEV"},
		} {
			if e == n.e {
				return n.name
			}
		}
	}
	return err.Error()
}
