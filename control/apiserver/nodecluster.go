package apiserver

import (
	"encoding/json"

	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// handleNodeCluster tells a node what it must share with the servers: the
// service CIDR and the cluster DNS IP in it, so that an agent's
// --cluster-dns comes from the servers' --service-cidr (node/clusterdns.go)
// instead of a default that another CIDR breaks.
func (s *Server) handleNodeCluster(req micro.Request) {
	if _, err := nodeOf(req.Subject()); err != nil {
		syncErr(req, err)
		return
	}
	dns, err := api.ClusterDNSIP(s.ranges.cidr.String()) // checked by Config defaults
	if err != nil {
		syncErr(req, api.NewInternal(err))
		return
	}
	b, err := json.Marshal(api.NodeClusterConfig{ServiceCIDR: s.ranges.cidr.String(), ClusterDNS: dns.String()})
	if err != nil {
		syncErr(req, api.NewInternal(err))
		return
	}
	_ = req.Respond(b)
}
