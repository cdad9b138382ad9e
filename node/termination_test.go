package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// A container's termination message comes from the file at its
// terminationMessagePath (capped at 4 KiB) or, with FallbackToLogsOnError
// and a failure, from the end of its log.
func TestTerminationMessage(t *testing.T) {
	h := newHarness(t)
	h.start()
	big := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name   string
		path   string
		policy api.TerminationMessagePolicy
		args   []string
		want   string
	}{
		{"default path", "", "", []string{"write", "/dev/termination-log", "bye", "exit", "3"}, "bye"},
		{"own path", "/tmp/why", "", []string{"write", "/tmp/why", "because", "exit", "0"}, "because"},
		{"capped at 4 KiB", "", "", []string{"write", "/dev/termination-log", big, "exit", "1"}, big[:4096]},
		{"file policy ignores the log", "", api.TerminationMessageReadFile, []string{"out", "boom", "exit", "1"}, ""},
		{"fallback to the log on error", "", api.TerminationMessageFallbackToLogsOnError, []string{"out", "boom", "exit", "1"}, "boom\n"},
		{"fallback not on success", "", api.TerminationMessageFallbackToLogsOnError, []string{"out", "fine", "exit", "0"}, ""},
		{"file wins over the log", "", api.TerminationMessageFallbackToLogsOnError, []string{"out", "boom", "write", "/dev/termination-log", "file", "exit", "1"}, "file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mkpod(strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")), api.RestartPolicyNever, "fake://prog")
			c := &p.Spec.Containers[0]
			c.Args, c.TerminationMessagePath, c.TerminationMessagePolicy = tc.args, tc.path, tc.policy
			api.Default(p)
			p = h.cp.assign(p)
			testutil.Eventually(t, 10*time.Second, func() error {
				u := h.cp.last(p.UID)
				if u == nil || len(u.Status.ContainerStatuses) == 0 || u.Status.ContainerStatuses[0].State.Terminated == nil {
					if u != nil {
						return fmt.Errorf("not terminated yet: %s", describe(u.Status.ContainerStatuses))
					}
					return fmt.Errorf("not terminated yet")
				}
				if got := u.Status.ContainerStatuses[0].State.Terminated.Message; got != tc.want {
					return fmt.Errorf("message %.60q (%d bytes), want %.60q (%d bytes)", got, len(got), tc.want, len(tc.want))
				}
				return nil
			})
		})
	}
}

// The agent reads a termination message only beneath its directory: a
// symbolic link planted in a volume (link -> a host directory) or at the
// file itself gives no message, not the host file.
func TestReadCappedStaysBeneathItsDirectory(t *testing.T) {
	tmp := t.TempDir()
	vol, secret := filepath.Join(tmp, "vol"), filepath.Join(tmp, "secret")
	for _, d := range []string{vol, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(secret, "shadow"), []byte("root:x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "msg"), []byte("fine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(vol, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(secret, "shadow"), filepath.Join(vol, "file-link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ rel, want string }{
		{"msg", "fine"},
		{"link/shadow", ""},
		{"file-link", ""},
		{"../secret/shadow", ""},
		{"missing", ""},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			if got := readCapped(vol, filepath.FromSlash(tc.rel), 4096); got != tc.want {
				t.Errorf("readCapped(%q) = %q, want %q", tc.rel, got, tc.want)
			}
		})
	}
}
