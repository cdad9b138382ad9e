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

// Pod events a podevents request may ask for.
const (
	defaultPodEvents = 20
	maxPodEvents     = 200 // what EventsStream keeps per pod
)

func (s *Server) handlePodEvents(req micro.Request) {
	var r api.PodEventsRequest
	if err := decodeBody(req.Data(), &r, "PodEventsRequest"); err != nil {
		syncErr(req, err)
		return
	}
	var err error
	r.Namespace, err = checkPodRef(r.Namespace, r.Pod)
	if err == nil && (r.Limit < 0 || r.Limit > maxPodEvents) {
		err = api.NewBadRequest("limit: %d is not between 0 and %d", r.Limit, maxPodEvents)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	if r.Limit == 0 {
		r.Limit = defaultPodEvents
	}
	e := s.cache.get(podKind, r.Namespace, r.Pod)
	if e == nil {
		syncErr(req, api.NewNotFound("Pod", r.Pod))
		return
	}
	pod := e.obj.(*api.Pod)
	created, node := pod.CreationTimestamp, pod.Spec.NodeName
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		if err := s.authorize(req, api.VerbGet, "pods", r.Namespace, r.Pod); err != nil {
			return nil, err
		}
		if node == "" {
			return json.Marshal(api.PodEventList{Items: []api.PodEvent{}})
		}
		items, err := s.podEvents(ctx, node, r.Namespace, r.Pod, created, r.Limit)
		if err != nil {
			return nil, err
		}
		return json.Marshal(api.PodEventList{Items: items})
	})
}

// podEvents reads the last n events of the pod from the events stream, as
// published by node (the one the pod is bound to: no other node's word
// counts), leaving out those of an earlier pod of the same name (older
// than created, with a second's slack for clocks).
func (s *Server) podEvents(ctx context.Context, node, ns, pod string, created time.Time, n int) ([]api.PodEvent, error) {
	stream, err := s.js.Stream(ctx, api.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("pod events: open stream %s: %w", api.EventsStream, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{api.PodEventSubject(node, ns, pod)}})
	if err != nil {
		return nil, fmt.Errorf("pod events of %s/%s: %w", ns, pod, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("pod events of %s/%s: %w", ns, pod, err)
	}
	out := []api.PodEvent{}
	if info.NumPending == 0 {
		return out, nil
	}
	batch, err := cons.Fetch(int(info.NumPending), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("pod events of %s/%s: %w", ns, pod, err)
	}
	for msg := range batch.Messages() {
		var ev api.PodEvent
		if json.Unmarshal(msg.Data(), &ev) != nil || ev.Time.Before(created.Add(-time.Second)) {
			continue
		}
		out = append(out, ev)
		if len(out) > n {
			out = out[1:]
		}
	}
	if err := batch.Error(); err != nil {
		return nil, fmt.Errorf("pod events of %s/%s: %w", ns, pod, err)
	}
	return out, nil
}
