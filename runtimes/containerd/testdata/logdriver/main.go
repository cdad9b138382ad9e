// Command logdriver is the containers' log driver in the tests of
// runtimes/containerd (kyb itself serves as the driver in production).
package main

import "github.com/kybernetes/kybernetes/runtimes/containerd"

func main() {
	containerd.LogDriverMain()
	panic("logdriver: not started by the containerd shim as a log driver")
}
