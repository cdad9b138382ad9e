// Package cli holds the kyb commands. Run is the whole program: main only
// calls it with the arguments and I/O streams, so tests drive every command
// in process.
package cli
