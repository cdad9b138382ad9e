// Command execsh stands in for /bin/sh in the exec tests' container image
// (no busybox offline): `sh -c SCRIPT` runs SCRIPT, commands separated by
// ";", words split on blanks after $VAR expansion ($HOSTNAME is the UTS
// host name when unset, as bash sets it). Called by another name (the
// image links true, false, echo, cat, sleep to it) it runs that command. Commands: echo WORDS, exit N,
// true, false, cat (stdin to stdout), sleep SECONDS, procs (the number of
// processes in /proc), serve PORT (an HTTP server: / answers
// "hello from HOST", /bytes?n=N answers N bytes), tar cf - PATH and
// tar xf - -C DIR (what kyb cp runs).
package main

import (
	"archive/tar"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	args := os.Args[1:]
	script := strings.Join(args, " ")
	if len(args) >= 2 && args[0] == "-c" {
		script = args[1]
	}
	if base := filepath.Base(os.Args[0]); base != "sh" {
		script = strings.Join(append([]string{base}, args...), " ") // true, cat, echo, ... (links to sh)
	}
	host, _ := os.Hostname()
	expand := func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		if k == "HOSTNAME" {
			return host
		}
		return ""
	}
	code := 0
	for _, cmd := range strings.Split(script, ";") {
		w := strings.Fields(os.Expand(cmd, expand))
		if len(w) == 0 {
			continue
		}
		switch w[0] {
		case "echo":
			fmt.Println(strings.Join(w[1:], " "))
			code = 0
		case "exit":
			n := 0
			if len(w) > 1 {
				n, _ = strconv.Atoi(w[1])
			}
			os.Exit(n)
		case "true":
			code = 0
		case "false":
			code = 1
		case "cat":
			if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
				fmt.Fprintln(os.Stderr, "cat:", err)
				code = 1
			}
		case "sleep":
			s, _ := strconv.ParseFloat(w[len(w)-1], 64)
			time.Sleep(time.Duration(s * float64(time.Second)))
		case "procs":
			es, _ := os.ReadDir("/proc")
			n := 0
			for _, e := range es {
				if _, err := strconv.Atoi(e.Name()); err == nil {
					n++
				}
			}
			fmt.Println(n)
		case "tar": // tar cf - PATH | tar xf - -C DIR
			if err := tarCmd(w[1:]); err != nil {
				fmt.Fprintln(os.Stderr, "tar:", err)
				os.Exit(2)
			}
		case "serve":
			http.HandleFunc("/bytes", func(rw http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				buf := make([]byte, 64<<10)
				for n > 0 {
					k := min(n, len(buf))
					if _, err := rw.Write(buf[:k]); err != nil {
						return
					}
					n -= k
				}
			})
			http.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(rw, "hello from %s\n", host)
			})
			fmt.Fprintln(os.Stderr, http.ListenAndServe(":"+w[len(w)-1], nil))
			os.Exit(1)
		default:
			fmt.Fprintf(os.Stderr, "sh: %s: not found\n", w[0])
			code = 127
		}
	}
	os.Exit(code)
}

func tarCmd(args []string) error {
	switch {
	case len(args) == 3 && args[0] == "cf" && args[1] == "-":
		tw := tar.NewWriter(os.Stdout)
		root := filepath.Clean(args[2])
		base := filepath.Dir(root)
		err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(base, p)
			h, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			h.Name = rel
			if fi.IsDir() {
				h.Name += "/"
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(tw, f)
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tw.Close()
	case len(args) == 4 && args[0] == "xf" && args[1] == "-" && args[2] == "-C":
		tr := tar.NewReader(os.Stdin)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			p := filepath.Join(args[3], filepath.Clean("/"+h.Name))
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
			case tar.TypeReg:
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode)&0o777)
				if err != nil {
					return err
				}
				_, err = io.Copy(f, tr)
				f.Close()
				if err != nil {
					return err
				}
			}
		}
	}
	return fmt.Errorf("usage: tar cf - PATH | tar xf - -C DIR")
}
