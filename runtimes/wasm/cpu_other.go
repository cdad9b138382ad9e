//go:build !linux

package wasm

// Elsewhere CPU time is not measured (0); instances are still counted.
func startThreadCPU() *liveRun     { return nil }
func endThreadCPU(*liveRun) uint64 { return 0 }
func threadCPU(int) (uint64, bool) { return 0, false }
