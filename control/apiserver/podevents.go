package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// maxPodEvents bounds the events of one podevents reply.
const maxPodEvents = 200

// handlePodEvents answers kyb.api.v1.podevents: the last events of a pod,
// read from the events stream by the control plane (clients never read
// JetStream themselves). Only events from the node the pod is bound to
// count, and none from before the pod was made (an earlier pod of the same
// name).
func (s *Server) handlePodEvents(req micro.Request) {
	var in api.PodEventsRequest
	if err := decodeBody(req.Data(), &in, "PodEventsRequest"); err != nil {
		syncErr(req, err)
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		_, ns, err := scope("Pod", in.Namespace)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(req, api.VerbGet, "pods", ns, in.Name); err != nil {
			return nil, err
		}
		if in.Limit <= 0 {
			in.Limit = 50
		}
		in.Limit = min(in.Limit, maxPodEvents)
		e := s.cache.get(podKind, ns, in.Name)
		if e == nil {
			return nil, api.NewNotFound("Pod", in.Name)
		}
		pod := e.obj.(*api.Pod)
		node := pod.Spec.NodeName
		if node == "" {
			return json.Marshal(api.PodEventsReply{Items: []api.PodEvent{}})
		}
		items, err := s.podEvents(ctx, api.PodEventSubject(node, ns, in.Name), pod.CreationTimestamp.Add(-time.Second), in.Limit)
		if err != nil {
			return nil, fmt.Errorf("read events of pod %s/%s: %w", ns, in.Name, err)
		}
		return json.Marshal(api.PodEventsReply{Items: items})
	})
}

func (s *Server) podEvents(ctx context.Context, subject string, since time.Time, n int) ([]api.PodEvent, error) {
	stream, err := s.js.Stream(ctx, api.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", api.EventsStream, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.PodEvent{}
	for pending := info.NumPending; pending > 0; {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			return nil, err
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, err
		}
		pending = md.NumPending
		var ev api.PodEvent
		if json.Unmarshal(msg.Data(), &ev) != nil || ev.Time.Before(since) {
			continue
		}
		out = append(out, ev)
		if len(out) > n {
			out = out[1:]
		}
	}
	return out, nil
}
