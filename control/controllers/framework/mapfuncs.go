package framework

import "github.com/kybernetes/kybernetes/api"

// OwnerKey returns a MapFunc that maps an object to the key of its
// controlling owner of the given kind (the ownerReference with controller:
// true, in the object's namespace), or to nothing: a ReplicaSet controller
// watches pods with OwnerKey("ReplicaSet").
func OwnerKey(kind string) MapFunc {
	return func(obj api.Object) []Key {
		m := obj.GetObjectMeta()
		for _, ref := range m.OwnerReferences {
			if ref.Controller != nil && *ref.Controller && ref.Kind == kind {
				return []Key{{Namespace: m.Namespace, Name: ref.Name}}
			}
		}
		return nil
	}
}

// NamespaceKey maps an object to the key of its namespace (a cluster-scoped
// Namespace key).
func NamespaceKey(obj api.Object) []Key {
	return []Key{{Name: obj.GetObjectMeta().Namespace}}
}
