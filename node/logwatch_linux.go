package node

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileChanges signals (coalesced) each write to the file at path, by
// inotify, so that a follower reads at once instead of at its next poll;
// stop releases the watch. It returns a nil channel when the file cannot
// be watched (the follower polls).
func fileChanges(path string) (changes <-chan struct{}, stop func()) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, func() {}
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	ch := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, func() { f.Close() }
}
