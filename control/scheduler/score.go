package scheduler

import "math"

// ScoreFitBinPack scores how well a node is packed once a pod is placed,
// following Nomad's ScoreFitBinPack: with freeCPU and freeMem the fractions
// of allocatable left free after placement, the score is
// 20 - (10^freeCPU + 10^freeMem), in [0, 18]; a fuller node scores higher.
// used includes the pod being placed. A resource with zero allocatable
// counts as full. It is a pure function, safe for concurrent use.
func ScoreFitBinPack(allocatable, used Resources) float64 {
	return 20 - fitTotal(allocatable, used)
}

// ScoreFitSpread is the opposite of ScoreFitBinPack, Nomad's spread
// algorithm: (10^freeCPU + 10^freeMem) - 2, in [0, 18]; an emptier node
// scores higher. It is a pure function, safe for concurrent use.
func ScoreFitSpread(allocatable, used Resources) float64 {
	return fitTotal(allocatable, used) - 2
}

func fitTotal(allocatable, used Resources) float64 {
	return math.Pow(10, freeFraction(allocatable.CPU, used.CPU)) +
		math.Pow(10, freeFraction(allocatable.Memory, used.Memory))
}

func freeFraction(alloc, used int64) float64 {
	if alloc <= 0 {
		return 0
	}
	f := 1 - float64(used)/float64(alloc)
	return min(max(f, 0), 1)
}
