//go:build !linux

package node

// fileChanges is a nil channel off Linux: a follower polls.
func fileChanges(path string) (changes <-chan struct{}, stop func()) { return nil, func() {} }
