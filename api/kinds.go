package api

import (
	"fmt"
	"strings"
)

// Kind describes one resource kind: its names, scope and accepted API versions.
type Kind struct {
	// Name is the Kind, e.g. "Pod".
	Name string
	// Plural is the lower-case plural, e.g. "pods".
	Plural string
	// Short are the short names, e.g. "po".
	Short []string
	// Namespaced is false for cluster-scoped kinds (Node, Namespace).
	Namespaced bool
	// APIVersions are the accepted apiVersion values; the first is canonical.
	APIVersions []string
	// New returns a new empty object of the kind.
	New func() Object
}

// ClusterScope is the namespace segment used for cluster-scoped objects.
const ClusterScope = "_"

// DefaultNamespace is the namespace of objects that do not name one.
const DefaultNamespace = "default"

var kinds = []*Kind{
	{Name: "Pod", Plural: "pods", Short: []string{"po", "pod"}, Namespaced: true, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &Pod{} }},
	{Name: "Node", Plural: "nodes", Short: []string{"no", "node"}, Namespaced: false, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &Node{} }},
	{Name: "Namespace", Plural: "namespaces", Short: []string{"ns", "namespace"}, Namespaced: false, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &Namespace{} }},
	roleKind, clusterRoleKind, roleBindingKind, clusterRoleBindingKind, eventKind,
	jobKind, cronJobKind,
	replicaSetKind, deploymentKind,
	daemonSetKind,
	serviceKind, endpointSliceKind,
	configMapKind, secretKind,
	statefulSetKind, controllerRevisionKind,
	storageClassKind, pvKind, pvcKind,
}

// The workload kinds (apps.go).
var (
	replicaSetKind = &Kind{Name: "ReplicaSet", Plural: "replicasets", Short: []string{"rs", "replicaset"}, Namespaced: true, APIVersions: []string{AppsVersion, "kyb/v1"}, New: func() Object { return &ReplicaSet{} }}
	daemonSetKind  = &Kind{Name: "DaemonSet", Plural: "daemonsets", Short: []string{"ds", "daemonset"}, Namespaced: true, APIVersions: []string{AppsVersion, "kyb/v1"}, New: func() Object { return &DaemonSet{} }}
	deploymentKind = &Kind{Name: "Deployment", Plural: "deployments", Short: []string{"deploy", "deployment"}, Namespaced: true, APIVersions: []string{AppsVersion, "kyb/v1"}, New: func() Object { return &Deployment{} }}
)

// eventKind is the Event kind (event.go): listed and watched through the
// API, recorded by the cluster's components, never applied or stored in
// the objects bucket.
var eventKind = &Kind{Name: "Event", Plural: "events", Short: []string{"ev", "event"}, Namespaced: true, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &Event{} }}

// EventKind returns the Event kind.
func EventKind() *Kind { return eventKind }

// The RBAC kinds (rbac.go).
var (
	roleKind               = &Kind{Name: "Role", Plural: "roles", Short: []string{"role"}, Namespaced: true, APIVersions: []string{RBACVersion, "kyb/v1"}, New: func() Object { return &Role{} }}
	clusterRoleKind        = &Kind{Name: "ClusterRole", Plural: "clusterroles", Short: []string{"clusterrole"}, Namespaced: false, APIVersions: []string{RBACVersion, "kyb/v1"}, New: func() Object { return &ClusterRole{} }}
	roleBindingKind        = &Kind{Name: "RoleBinding", Plural: "rolebindings", Short: []string{"rolebinding"}, Namespaced: true, APIVersions: []string{RBACVersion, "kyb/v1"}, New: func() Object { return &RoleBinding{} }}
	clusterRoleBindingKind = &Kind{Name: "ClusterRoleBinding", Plural: "clusterrolebindings", Short: []string{"clusterrolebinding"}, Namespaced: false, APIVersions: []string{RBACVersion, "kyb/v1"}, New: func() Object { return &ClusterRoleBinding{} }}
)

// Kinds returns every known kind.
func Kinds() []*Kind { return kinds }

// LookupKind finds a kind by its Kind name, plural or short name, case-insensitively.
// It returns an error naming the unknown kind when none matches.
func LookupKind(name string) (*Kind, error) {
	n := strings.ToLower(name)
	for _, k := range kinds {
		if strings.ToLower(k.Name) == n || k.Plural == n {
			return k, nil
		}
		for _, s := range k.Short {
			if s == n {
				return k, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown kind %q", name)
}

// FillTypeMeta sets an empty kind and apiVersion to the kind's name and
// canonical (first) apiVersion.
func (k *Kind) FillTypeMeta(tm *TypeMeta) {
	if tm.Kind == "" {
		tm.Kind = k.Name
	}
	if tm.APIVersion == "" {
		tm.APIVersion = k.APIVersions[0]
	}
}

// KindOf returns the kind of a typed object.
func KindOf(o Object) *Kind {
	switch o.(type) {
	case *Pod:
		return kinds[0]
	case *Node:
		return kinds[1]
	case *Namespace:
		return kinds[2]
	case *Role:
		return roleKind
	case *ClusterRole:
		return clusterRoleKind
	case *RoleBinding:
		return roleBindingKind
	case *ClusterRoleBinding:
		return clusterRoleBindingKind
	case *Event:
		return eventKind
	case *Job:
		return jobKind
	case *CronJob:
		return cronJobKind
	case *ReplicaSet:
		return replicaSetKind
	case *Deployment:
		return deploymentKind
	case *DaemonSet:
		return daemonSetKind
	case *Service:
		return serviceKind
	case *EndpointSlice:
		return endpointSliceKind
	case *ConfigMap:
		return configMapKind
	case *Secret:
		return secretKind
	case *StatefulSet:
		return statefulSetKind
	case *ControllerRevision:
		return controllerRevisionKind
	case *StorageClass:
		return storageClassKind
	case *PersistentVolume:
		return pvKind
	case *PersistentVolumeClaim:
		return pvcKind
	}
	panic(fmt.Sprintf("api: no kind for %T", o))
}

// AcceptsVersion reports whether apiVersion is accepted for the kind.
func (k *Kind) AcceptsVersion(apiVersion string) bool {
	for _, v := range k.APIVersions {
		if v == apiVersion {
			return true
		}
	}
	return false
}
