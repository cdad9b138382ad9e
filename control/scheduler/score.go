package scheduler

import "math"

// ScoreFitBinPack scores how well a node is packed once a pod is placed,
// following Nomad's ScoreFitBinPack: with freeCPU and freeMem the fractions
// of allocatable left free after placement, the score is
// 20 - (10^freeCPU + 10^freeMem), in [0, 18]; a fuller node scores higher.
// used includes the pod being placed. A resource with zero allocatable
// counts as full. 10^x is read from a table with linear interpolation
// (error below 1e-5), because it is computed for hundreds of nodes per
// decision. It is a pure function, safe for concurrent use.
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
	return pow10(freeFraction(allocatable.CPU, used.CPU)) + pow10(freeFraction(allocatable.Memory, used.Memory))
}

func freeFraction(alloc, used int64) float64 {
	if alloc <= 0 {
		return 0
	}
	f := 1 - float64(used)/float64(alloc)
	return min(max(f, 0), 1)
}

const pow10Steps = 1024

// pow10Table[i] is 10^(i/pow10Steps).
var pow10Table = func() (t [pow10Steps + 1]float64) {
	for i := range t {
		t[i] = math.Pow(10, float64(i)/pow10Steps)
	}
	return t
}()

// pow10 returns 10^x for x in [0, 1].
func pow10(x float64) float64 {
	f := x * pow10Steps
	i := int(f)
	if i >= pow10Steps {
		return pow10Table[pow10Steps]
	}
	frac := f - float64(i)
	return pow10Table[i] + (pow10Table[i+1]-pow10Table[i])*frac
}
