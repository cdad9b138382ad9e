package inproc

import (
	"fmt"
	"os"
	"path/filepath"
)

// OpenLog opens a container's log for appending, creating its directory;
// an empty path discards the output. The caller closes the file.
func OpenLog(path string) (*os.File, error) {
	if path == "" {
		path = os.DevNull
	} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}
