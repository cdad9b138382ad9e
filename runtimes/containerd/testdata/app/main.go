// Command app is the program inside the test image of runtimes/containerd.
// It is built statically and packed as an OCI image by the tests.
//
//	app serve PORT TEXT    serve TEXT over HTTP on PORT until SIGTERM
//	app get URL            print the body at URL, retrying for 10s
//	app sleep              sleep until SIGTERM, then exit 0
//	app ignore-term        ignore SIGTERM and sleep forever
//	app exit CODE          print to stdout and stderr, exit with CODE
//	app alloc MIB          allocate and touch MIB mebibytes, then sleep
//	app env                print args, working dir and environment
//	app status             print the security lines of /proc/self/status
//	app write PATH         create PATH, print "write ok" or the error
//	app chown PATH         create PATH and chown it to 1:1, print "chown ok" or the error
//	app keyctl             call keyctl (refused by the default seccomp profile), print "keyctl ok" or the error
//	app fill PATH MIB      write MIB mebibytes to PATH, then sleep
//	app probe [PATH]       status, write /work/x, chown /tmp/f, keyctl, and write PATH if given
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "probe" {
		self, _ := os.Executable()
		cmds := [][]string{{"status"}, {"write", "/work/x"}, {"chown", "/tmp/f"}, {"keyctl"}}
		if len(os.Args) > 2 {
			cmds = append(cmds, []string{"write", os.Args[2]})
		}
		for _, c := range cmds {
			cmd := exec.Command(self, c...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			cmd.Run()
		}
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app serve|get|sleep|ignore-term|exit|alloc|env")
		os.Exit(2)
	}
	term := make(chan os.Signal, 1)
	switch os.Args[1] {
	case "serve":
		signal.Notify(term, syscall.SIGTERM)
		text := os.Args[3]
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, text) })
		go func() {
			if err := http.ListenAndServe(":"+os.Args[2], nil); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
		<-term
	case "get":
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(os.Args[2])
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				fmt.Print(string(b))
				return
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	case "sleep":
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("sleeping")
		<-term
		fmt.Println("got SIGTERM")
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		for {
			time.Sleep(time.Hour)
		}
	case "exit":
		code, _ := strconv.Atoi(os.Args[2])
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(code)
	case "alloc":
		mib, _ := strconv.Atoi(os.Args[2])
		var keep [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep))
		for {
			time.Sleep(time.Hour)
		}
	case "env":
		wd, _ := os.Getwd()
		host, _ := os.Hostname()
		fmt.Printf("args=%s\nwd=%s\nhostname=%s\n", strings.Join(os.Args[1:], " "), wd, host)
		for _, e := range os.Environ() {
			fmt.Println("env", e)
		}
	case "status":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fmt.Println("status:", err)
			os.Exit(1)
		}
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"Uid:", "Gid:", "Groups:", "CapEff:", "CapBnd:", "NoNewPrivs:", "Seccomp:", "NSpid:"} {
				if strings.HasPrefix(l, k) {
					fmt.Println(strings.Join(strings.Fields(l), " "))
				}
			}
		}
	case "write":
		if err := os.WriteFile(os.Args[2], []byte("x"), 0o644); err != nil {
			fmt.Println("write:", err)
			return
		}
		fmt.Println("write ok")
	case "chown":
		os.WriteFile(os.Args[2], []byte("x"), 0o644)
		if err := os.Chown(os.Args[2], 1, 1); err != nil {
			fmt.Println("chown:", err)
			return
		}
		fmt.Println("chown ok")
	case "keyctl":
		// KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3), creating it.
		_, _, errno := syscall.Syscall(syscall.SYS_KEYCTL, 0, ^uintptr(2), 1)
		if errno != 0 {
			fmt.Println("keyctl:", errno)
			return
		}
		fmt.Println("keyctl ok")
	case "fill":
		mib, _ := strconv.Atoi(os.Args[3])
		f, err := os.Create(os.Args[2])
		if err != nil {
			fmt.Println("fill:", err)
			os.Exit(1)
		}
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i)
		}
		for i := 0; i < mib; i++ {
			if _, err := f.Write(buf); err != nil {
				fmt.Println("fill:", err)
				break
			}
		}
		f.Sync()
		fmt.Println("filled")
		for {
			time.Sleep(time.Hour)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
