package apiserver

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// handleNodeServiceWatch answers kyb.node.<name>.servicewatch: a watch of every
// Service and EndpointSlice in every namespace, which a node may read as a
// Kubernetes node reads them (kube-proxy and the cluster DNS of every node
// need them all). The current objects come first, then SYNCED, then every
// change; a resumed watch (ResourceVersion set) gets only the changes.
func (s *Server) handleNodeServiceWatch(req micro.Request) {
	var r api.ServicesWatchRequest
	if len(req.Data()) > 0 {
		if err := decodeBody(req.Data(), &r, "ServicesWatchRequest"); err != nil {
			syncErr(req, err)
			return
		}
	}
	var from uint64
	initial := r.ResourceVersion == ""
	if !initial {
		var err error
		if from, err = strconv.ParseUint(r.ResourceVersion, 10, 64); err != nil {
			syncErr(req, api.NewBadRequest("resourceVersion: %q is not a revision", r.ResourceVersion))
			return
		}
	}
	svc, _ := api.LookupKind("Service")
	eps, _ := api.LookupKind("EndpointSlice")
	f := &watchFilter{kinds: []*api.Kind{svc, eps}, synced: true}
	s.serveStream(req, s.nodeWatches, "services watch", func(ctx context.Context, st *stream) (string, error) {
		return s.runWatch(ctx, st, f, from, initial)
	})
}
