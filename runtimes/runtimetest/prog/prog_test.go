package prog

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	files := map[string][]byte{"/in": []byte("content")}
	for _, tc := range []struct {
		name        string
		args        []string
		code        int
		stdout      string
		stderr      string
		cancelFirst bool
	}{
		{"nothing", nil, 0, "", "", false},
		{"out err exit", []string{"out", "a", "err", "b", "exit", "3", "out", "never"}, 3, "a\n", "b\n", false},
		{"env", []string{"env", "SET", "env", "UNSET"}, 0, "SET=v\nUNSET unset\n", "", false},
		{"args", []string{"args", "x y"}, 64, "args:args|x y\n", "unknown verb \"x y\"\n", false},
		{"cat", []string{"cat", "/in", "cat", "/missing"}, 1, "content\n", "cat: no such file\n", false},
		{"write", []string{"write", "/out", "hi", "cat", "/out"}, 0, "hi\n", "", false},
		{"missing argument", []string{"exit"}, 64, "", "exit: needs 1 argument(s)\n", false},
		{"sleep stopped", []string{"sleep", "forever"}, Stopped, "", "", true},
		{"loop stopped", []string{"loop"}, Stopped, "", "", true},
		{"sleep", []string{"sleep", "1ms", "out", "woke"}, 0, "woke\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancelFirst {
				cancel()
			}
			defer cancel()
			code := Run(ctx, tc.args, Sys{
				Getenv: func(n string) (string, bool) {
					if n == "SET" {
						return "v", true
					}
					return "", false
				},
				Stdout: &stdout,
				Stderr: &stderr,
				ReadFile: func(p string) ([]byte, error) {
					if b, ok := files[p]; ok {
						return b, nil
					}
					return nil, errors.New("no such file")
				},
				WriteFile: func(p string, b []byte) error { files[p] = b; return nil },
				Sleep: func(d time.Duration) bool {
					if ctx.Err() != nil {
						return false
					}
					time.Sleep(d)
					return true
				},
			})
			if code != tc.code || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("code %d stdout %q stderr %q, want %d %q %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
