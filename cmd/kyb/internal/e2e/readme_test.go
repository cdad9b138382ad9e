package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// The README's first session is true as written: `kyb up` runs as a new
// user would start it (its banner's commands included), and every command
// of the README's "A first session" block, pasted into a second terminal,
// succeeds — with the kyb binary built once standing in for `go run
// ./cmd/kyb` (the same program, without compiling it for each line).
func TestReadmeFirstSession(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands against a real kyb up")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the README's session uses curl")
	}
	root := runtimetest.ModuleRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	session := firstSession(t, string(readme))
	kyb := runtimetest.BuildGo(t, "./cmd/kyb", "linux", runtime.GOARCH)
	for _, port := range []string{"18080", "18081"} { // the examples' hostPorts
		if l, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Fatalf("port %s, which the README's examples use, is taken: %v", port, err)
		} else {
			l.Close()
		}
	}
	home := t.TempDir()
	// A new HOME (where kyb up writes ~/.kyb/config), with Go's caches kept
	// where they are: they default to beneath HOME.
	goEnv, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	caches := strings.Fields(string(goEnv))
	env := append(os.Environ(), "HOME="+home, "KYB_CONFIG=", "KYB_SERVER=",
		"GOPATH="+caches[0], "GOMODCACHE="+caches[1], "GOCACHE="+caches[2])
	// Terminal 1: kyb up, as the README's first command (its own data dir
	// and a free port rather than the machine's; wasm only, so that it
	// leaves the machine's containerd, nftables and DNS address alone).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := exec.CommandContext(ctx, kyb, "up", "--data-dir", filepath.Join(home, "data"), "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--http", "127.0.0.1:0", "--metrics-listen", "off", "--containerd", "off",
		"--service-proxy=false", "--cluster-dns", "")
	up.Dir, up.Env = root, env
	var upOut testutil.SyncBuffer
	up.Stdout, up.Stderr = &upOut, &upOut
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = up.Process.Signal(os.Interrupt)
		_ = up.Wait()
		if t.Failed() {
			t.Logf("kyb up said:\n%s", upOut.String())
		}
	}()
	testutil.Eventually(t, 60*time.Second, func() error {
		if !strings.Contains(upOut.String(), "Stop with Ctrl-C.") {
			return fmt.Errorf("kyb up has not printed its banner")
		}
		return nil
	})
	// The banner's export is what a user pastes first when ~/.kyb/config
	// is someone else's; here it is kyb up's own.
	run := func(line string, timeout time.Duration) (string, error) {
		line = strings.ReplaceAll(line, "go run ./cmd/kyb", kyb)
		line = regexp.MustCompile(`go tool task (\S+)`).ReplaceAllString(line, "go tool task $1 KYB="+kyb)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", line)
		cmd.Dir, cmd.Env = root, env
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return string(out), err
	}
	// Then the banner's own suggestions, after its export.
	_, banner, _ := strings.Cut(upOut.String(), "\nNext:\n")
	banner, _, _ = strings.Cut(banner, "Stop with Ctrl-C.")
	var export string
	for _, line := range strings.Split(banner, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "export "):
			export = line + "; "
		default:
			session = append(session, export+line)
		}
	}
	for _, line := range session {
		t.Run(line, func(t *testing.T) {
			if strings.Contains(line, " -w") {
				// A watch runs until interrupted: it must print the
				// listing and keep running.
				out, err := run(line, 3*time.Second)
				if err != context.DeadlineExceeded || !strings.Contains(out, "NAME") {
					t.Errorf("%s: %v\n%s", line, err, out)
				}
				return
			}
			out, err := run(line, 3*time.Minute)
			if err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
			if strings.Contains(strings.ToLower(out), "not found") && !strings.Contains(line, "delete") {
				t.Errorf("%s printed an alarming line:\n%s", line, out)
			}
		})
		if t.Failed() {
			return
		}
	}
}

// firstSession is the commands of the README's "A first session" block:
// one per line, comments dropped.
func firstSession(t *testing.T, readme string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "## A first session")
	if !ok {
		t.Fatal("README has no \"A first session\" section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("README's first session has no sh block")
	}
	block, _, _ := strings.Cut(rest, "```")
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if len(lines) < 5 {
		t.Fatalf("README's first session holds %d commands: %q", len(lines), lines)
	}
	return lines
}
