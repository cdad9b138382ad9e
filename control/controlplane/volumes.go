package controlplane

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

// agentVolumeDeleter asks a node's agent to remove the directory of a
// volume the local provisioner made there (it publishes on
// kyb.agent.<node>.volumedelete; the agent confirms with the node verb
// volumedeleted, and the apiserver then removes the volume). It is the
// volume controller's Deleter.
type agentVolumeDeleter struct{ nc *nats.Conn }

// DeleteVolume publishes pv to its node.
func (d agentVolumeDeleter) DeleteVolume(_ context.Context, node string, pv *api.PersistentVolume) error {
	if node == "" {
		return fmt.Errorf("volume %s names no node", pv.Name)
	}
	b, err := json.Marshal(pv)
	if err != nil {
		return fmt.Errorf("encode volume %s: %w", pv.Name, err)
	}
	if err := d.nc.Publish(api.AgentSubject(node, api.AgentVerbVolumeDelete), b); err != nil {
		return fmt.Errorf("ask node %s to delete volume %s: %w", node, pv.Name, err)
	}
	return nil
}

// ensureStorageClass creates the built-in storage class `local` when it
// is not there (a user may have changed or deleted its default annotation
// since: an existing class is left as it is).
func ensureStorageClass(ctx context.Context, st *store.Store) error {
	sc := api.LocalStorageClass()
	if _, err := st.Get(ctx, api.KindOf(sc), "", sc.Name); err == nil {
		return nil
	} else if !api.IsNotFound(err) {
		return fmt.Errorf("look up storage class %s: %w", sc.Name, err)
	}
	if err := st.Create(ctx, sc); err != nil && !api.IsAlreadyExists(err) {
		return fmt.Errorf("create storage class %s: %w", sc.Name, err)
	}
	return nil
}
