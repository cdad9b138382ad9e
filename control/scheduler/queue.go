// The queue of pods waiting for a decision: first in, first out; an entry
// whose pod changed state or went since it was queued is skipped.

package scheduler

func (c *core) enqueue(pi *podInfo) {
	pi.state = stateQueued
	c.queue = append(c.queue, pi)
}

func (c *core) pop() *podInfo {
	for c.qhead < len(c.queue) {
		pi := c.queue[c.qhead]
		c.queue[c.qhead] = nil
		c.qhead++
		if c.qhead > 1024 && c.qhead*2 > len(c.queue) {
			n := copy(c.queue, c.queue[c.qhead:])
			c.queue = c.queue[:n]
			c.qhead = 0
		}
		if pi.state == stateQueued && c.pods[pi.key] == pi {
			pi.state = stateIdle
			return pi
		}
	}
	return nil
}

func (c *core) queuedLen() int {
	n := 0
	for _, pi := range c.queue[c.qhead:] {
		if pi != nil && pi.state == stateQueued && c.pods[pi.key] == pi {
			n++
		}
	}
	return n
}
