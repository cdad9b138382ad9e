package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// A container's termination message, as kubelet makes it: the agent gives
// each attempt a file of its own in the pod's directory, mounted at the
// container's terminationMessagePath, and reads it (at most 4 KiB) once the
// container has exited. A container runtime bind-mounts the file itself; a
// wasm module sees only preopened directories, so it gets a directory of its
// own mounted at the path's directory (for the default, /dev, which a WASI
// module has no other use for), and writes the file in it. When a volume
// already holds that path the message is read from the volume instead.
// With FallbackToLogsOnError, a failed container that wrote nothing gets
// the end of its log instead (80 lines, 2 KiB at most, as kubelet's).

// Kubelet's bounds of a message taken from the log.
const (
	fallbackLogLines = 80
	fallbackLogBytes = 2048
)

// terminationMount adds to cfg the mount of c's termination message file
// for this attempt and remembers where the agent reads it.
func (w *podWorker) terminationMount(pod *api.Pod, c *ctr, cfg *runtimes.ContainerConfig) error {
	c.termDir, c.termName = "", ""
	p := c.spec.TerminationMessagePath
	if p == "" {
		p = api.DefaultTerminationMessagePath
	}
	p = path.Clean(p)
	wasm := w.rtName == api.RuntimeWasm
	if wasm {
		// A volume that holds the path holds the file.
		if root, rel, ok := hostPathOf(cfg.Mounts, p); ok {
			c.termDir, c.termName = root, rel
			return nil
		}
	}
	dir, err := w.a.podPath(pod.UID, "containers", c.spec.Name)
	if err != nil {
		return fmt.Errorf("termination message: %w", err)
	}
	name := fmt.Sprintf("%d-termination-log", c.attempt)
	if wasm {
		dir = filepath.Join(dir, fmt.Sprintf("%d-termination", c.attempt))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("termination message: %w", err)
	}
	if wasm {
		// The module may run as any user; the directory is its alone.
		_ = os.Chmod(dir, 0o777)
		c.termDir, c.termName = dir, path.Base(p)
		_ = os.Remove(filepath.Join(dir, c.termName))
		cfg.Mounts = append(cfg.Mounts, runtimes.Mount{HostPath: dir, ContainerPath: path.Dir(p), Volume: "termination-log"})
		return nil
	}
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		return fmt.Errorf("termination message: %w", err)
	}
	_ = os.Chmod(f, 0o666) // as kubelet: writable by the container's user, whoever it is
	c.termDir, c.termName = dir, name
	cfg.Mounts = append(cfg.Mounts, runtimes.Mount{HostPath: f, ContainerPath: p, Volume: "termination-log"})
	return nil
}

// hostPathOf is where container path p is on the host through the mount
// that holds it (the deepest), if any: the mount's host directory and the
// path beneath it.
func hostPathOf(mounts []runtimes.Mount, p string) (root, rel string, ok bool) {
	best := -1
	for i, m := range mounts {
		cp := path.Clean(m.ContainerPath)
		if (p == cp || strings.HasPrefix(p, cp+"/") || cp == "/") && (best < 0 || len(cp) > len(path.Clean(mounts[best].ContainerPath))) {
			best = i
		}
	}
	if best < 0 {
		return "", "", false
	}
	m := mounts[best]
	rel = strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(m.ContainerPath)), "/")
	if rel == "" {
		return "", "", false // the path is the mount itself: a directory, no message
	}
	return m.HostPath, filepath.FromSlash(rel), true
}

// readTermination sets the message of c's exit from its termination
// message file or, by its policy, its log. It is called once an exit is
// recorded, before the pod's directory may go.
func (w *podWorker) readTermination(c *ctr) {
	if c.exit == nil {
		return
	}
	if msg := readCapped(c.termDir, c.termName, api.MaxTerminationMessageBytes); msg != "" {
		c.exit.Message = msg
		return
	}
	if c.spec.TerminationMessagePolicy != api.TerminationMessageFallbackToLogsOnError || c.exit.ExitCode == 0 {
		return
	}
	logPath, err := w.logPath(c.spec.Name, c.attempt)
	if err != nil {
		return
	}
	if msg := logTail(logPath); msg != "" {
		c.exit.Message = msg
	}
}

// readCapped is the first max bytes of the regular file rel beneath dir,
// "" when there is none. The file is opened through an os.Root on dir, so a
// symbolic link the container planted on the way (in a volume: link ->
// /etc, path link/shadow) cannot make the agent read a file outside dir.
func readCapped(dir, rel string, max int64) string {
	if dir == "" || rel == "" {
		return ""
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return ""
	}
	defer root.Close()
	if fi, err := root.Lstat(rel); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	f, err := root.Open(rel)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return string(b)
}

// logTail is the text of the last lines of a container's log file (CRI
// format or plain): at most fallbackLogLines lines and fallbackLogBytes.
func logTail(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	// A CRI line carries about 40 bytes of prefix; read enough for them.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(fi.Size()-window, io.SeekStart); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > fallbackLogLines {
		lines = lines[len(lines)-fallbackLogLines:]
	}
	var out []byte
	for _, l := range lines {
		out = append(out, criText(l)...)
		out = append(out, '\n')
	}
	if len(out) > fallbackLogBytes {
		out = out[len(out)-fallbackLogBytes:]
	}
	return string(out)
}

// criText is the text of one log line in the CRI format ("<time> <stream>
// <P|F> <text>"), or the line itself.
func criText(l []byte) []byte {
	ts, rest, ok := bytes.Cut(l, []byte(" "))
	if !ok {
		return l
	}
	if _, err := time.Parse(time.RFC3339Nano, string(ts)); err != nil {
		return l
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return l
	}
	if tag, text, ok := bytes.Cut(rest, []byte(" ")); ok && (string(tag) == "P" || string(tag) == "F") {
		return text
	}
	return l
}
