package client

import (
	"context"
	"fmt"

	"github.com/kybernetes/kybernetes/api"
)

// Events lists the events of namespace (all namespaces when all is set)
// that match fieldSelector (e.g. "involvedObject.kind=Pod,involvedObject.name=web"),
// oldest first, through kyb.api.v1.list of kind Event.
func (c *Client) Events(ctx context.Context, namespace string, all bool, fieldSelector string) ([]*api.Event, error) {
	objs, _, err := c.List(ctx, api.ListRequest{Kind: "Event", Namespace: namespace, AllNamespaces: all, FieldSelector: fieldSelector})
	if err != nil {
		return nil, err
	}
	out := make([]*api.Event, 0, len(objs))
	for _, o := range objs {
		ev, ok := o.(*api.Event)
		if !ok {
			return nil, fmt.Errorf("list events: got a %T", o)
		}
		out = append(out, ev)
	}
	return out, nil
}
