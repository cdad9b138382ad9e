// A decision: the filter chain over the nodes offering the pod's runtime,
// the scoring of the feasible ones, and the Unschedulable message when none
// fits.

package scheduler

import (
	mathbits "math/bits"

	"github.com/kybernetes/kybernetes/api"
)

func (c *core) feasible(pi *podInfo, ni *nodeInfo) failure {
	for _, ch := range c.chain {
		if f := ch.check(pi, ni); f.code != 0 {
			return f
		}
	}
	return failure{}
}

// decide picks a node for pi, or returns nil and the Unschedulable message.
// Only nodes offering the pod's runtime are searched, from a rotating start,
// until numFeasibleNodesToFind feasible ones are found; those are scored and
// the best wins, ties going to the node first in name order.
func (c *core) decide(pi *podInfo) (*nodeInfo, string) {
	if c.listDirty {
		c.rebuildList()
	}
	if len(pi.claims) > 0 {
		if msg := c.vols.preFilter(pi); msg != "" {
			return nil, unschedulableMessage(len(c.hot), map[string]int{msg: len(c.hot)})
		}
	}
	cands := c.byRuntime[pi.rtBit]
	if n := len(cands); n > 0 {
		want := numFeasibleNodesToFind(c.cfg.PercentageOfNodesToScore, len(c.list))
		start := c.next[pi.rtBit] % n
		best := int32(-1)
		var bestScore float64
		found, visited := 0, 0
		spread := c.cfg.Strategy == Spread
		for i := 0; i < n && found < want; i++ {
			j := start + i
			if j >= n {
				j -= n
			}
			idx := cands[j]
			h := &c.hot[idx]
			visited++
			if c.hotCheck(pi, h).code != 0 {
				continue
			}
			found++
			used := h.used
			used.add(pi.req)
			var s float64
			if spread {
				s = ScoreFitSpread(h.alloc, used)
			} else {
				s = ScoreFitBinPack(h.alloc, used)
			}
			if best < 0 || s > bestScore || (s == bestScore && idx < best) {
				best, bestScore = idx, s
			}
		}
		c.next[pi.rtBit] = (start + visited) % n
		c.visited += uint64(visited)
		if best >= 0 {
			return c.hot[best].ni, ""
		}
	}
	return nil, c.diagnose(pi)
}

// hotCheck is the filter chain over a node's hot data: the same checks in
// the same order, with the same result as feasible (a test holds them to
// that), reading nodeInfo only for taints and a nodeSelector.
func (c *core) hotCheck(pi *podInfo, h *nodeHot) failure {
	switch {
	case h.flags&hotUnschedulable != 0 && !pi.toleratesUnschedulable:
		return failure{code: failUnschedulable}
	case h.flags&hotNotReady != 0 && !pi.toleratesNotReady:
		return failure{code: failNotReady}
	case h.rtMask&pi.rtBit == 0:
		return failure{code: failRuntime}
	case pi.rtBit == overflowRuntimeBit:
		return c.feasible(pi, h.ni)
	}
	if len(pi.pod.Spec.NodeSelector) > 0 {
		if f := (selectorCheck{}).check(pi, h.ni); f.code != 0 {
			return f
		}
	}
	if h.flags&hotTainted != 0 {
		if f := (taintCheck{}).check(pi, h.ni); f.code != 0 {
			return f
		}
	}
	if len(pi.claims) > 0 {
		if code := c.vols.check(pi, h.ni); code != 0 {
			return failure{code: code}
		}
	}
	return failure{code: fitFailure(&pi.req, &h.used, &h.alloc)}
}

// diagnose runs every check on every node to say why none fits. Failures
// are counted by code (and taint) first and turned into text once, so a
// pod that fits nowhere costs no allocation per node.
func (c *core) diagnose(pi *podInfo) string {
	if c.listDirty {
		c.rebuildList()
	}
	clear(c.failCounts)
	var perBit [16]int
	for i := range c.hot {
		f := c.hotCheck(pi, &c.hot[i])
		if f.code == failTaint {
			c.failCounts[failKey{code: failTaint, taintKey: f.taint.Key, taintValue: f.taint.Value}]++
			continue
		}
		for bits := f.code; bits != 0; bits &= bits - 1 {
			perBit[mathbits.TrailingZeros16(bits)]++
		}
	}
	for i, n := range perBit {
		if n > 0 {
			c.failCounts[failKey{code: 1 << i}] += n
		}
	}
	clear(c.counts)
	for k, n := range c.failCounts {
		f := failure{code: k.code, taint: &api.Taint{Key: k.taintKey, Value: k.taintValue}}
		c.scratch = f.reasons(pi, c.scratch[:0])
		for _, r := range c.scratch {
			c.counts[r] += n
		}
	}
	return unschedulableMessage(len(c.hot), c.counts)
}
