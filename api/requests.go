package api

// PodRequests returns what a pod asks of a node: the sum of its containers'
// requests, or the largest request of a single init container when that is
// larger (init containers run one at a time, before the others), for CPU in
// millicores and for memory in bytes, as Kubernetes' scheduler computes it.
// A resource with a limit and no request counts its limit, as Default would
// set it. It does not change p and is safe for concurrent use.
func PodRequests(p *Pod) (milliCPU, memBytes int64) {
	for i := range p.Spec.Containers {
		c, m := containerRequests(&p.Spec.Containers[i])
		milliCPU += c
		memBytes += m
	}
	for i := range p.Spec.InitContainers {
		c, m := containerRequests(&p.Spec.InitContainers[i])
		milliCPU = max(milliCPU, c)
		memBytes = max(memBytes, m)
	}
	return milliCPU, memBytes
}

func containerRequests(c *Container) (milliCPU, memBytes int64) {
	get := func(name ResourceName) (ok bool, milli, value int64) {
		q, ok := c.Resources.Requests[name]
		if !ok {
			q, ok = c.Resources.Limits[name]
		}
		if !ok {
			return false, 0, 0
		}
		return true, q.MilliValue(), q.Value()
	}
	if ok, m, _ := get(ResourceCPU); ok {
		milliCPU = m
	}
	if ok, _, v := get(ResourceMemory); ok {
		memBytes = v
	}
	return milliCPU, memBytes
}
