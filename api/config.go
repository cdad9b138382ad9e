package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The configuration kinds.
var (
	configMapKind = &Kind{Name: "ConfigMap", Plural: "configmaps", Short: []string{"cm", "configmap"}, Namespaced: true, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &ConfigMap{} }}
	secretKind    = &Kind{Name: "Secret", Plural: "secrets", Short: []string{"secret"}, Namespaced: true, APIVersions: []string{"v1", "kyb/v1"}, New: func() Object { return &Secret{} }}
)

// ConfigMapKind returns the ConfigMap kind.
func ConfigMapKind() *Kind { return configMapKind }

// SecretKind returns the Secret kind.
func SecretKind() *Kind { return secretKind }

// MaxConfigSize is the largest total size of a ConfigMap's or Secret's
// keys and values (1 MiB), as Kubernetes' MaxSecretSize and
// validation of ConfigMaps.
const MaxConfigSize = 1 << 20

// ConfigMap holds configuration as keys and values, as Kubernetes' v1
// ConfigMap: Data for UTF-8 text, BinaryData for bytes (base64 in JSON).
type ConfigMap struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// Immutable true forbids every later change of Data and BinaryData
	// (and of Immutable itself); the object can only be deleted.
	Immutable  *bool             `json:"immutable,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// SecretType is the type of a Secret, which says which keys it must hold.
type SecretType string

// Secret types, as Kubernetes'.
const (
	SecretTypeOpaque           SecretType = "Opaque"
	SecretTypeDockerConfigJSON SecretType = "kubernetes.io/dockerconfigjson"
	SecretTypeDockercfg        SecretType = "kubernetes.io/dockercfg"
	SecretTypeBasicAuth        SecretType = "kubernetes.io/basic-auth"
	SecretTypeSSHAuth          SecretType = "kubernetes.io/ssh-auth"
	SecretTypeTLS              SecretType = "kubernetes.io/tls"
)

// Keys the typed Secrets must (or may) hold.
const (
	DockerConfigJSONKey   = ".dockerconfigjson"
	DockerConfigKey       = ".dockercfg"
	BasicAuthUsernameKey  = "username"
	BasicAuthPasswordKey  = "password"
	SSHAuthPrivateKey     = "ssh-privatekey"
	TLSCertKey            = "tls.crt"
	TLSPrivateKeyKey      = "tls.key"
	secretTypeLabelLength = 253
)

// Secret holds sensitive data, as Kubernetes' v1 Secret. StringData is
// write-only: defaulting merges it into Data (its keys win) and clears it,
// so it is never stored. The store encrypts Data at rest.
type Secret struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// Immutable true forbids every later change of Data, StringData and
	// Type (and of Immutable itself).
	Immutable  *bool             `json:"immutable,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	// Type is Opaque when empty.
	Type SecretType `json:"type,omitempty"`
}

// defaultSecret sets the type and merges stringData into data.
func defaultSecret(s *Secret) {
	if s.Type == "" {
		s.Type = SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

// validateConfigKeys checks the keys of one map of a ConfigMap or Secret
// (validation.IsConfigMapKey) and adds their sizes to *size.
func validateConfigKeys[V string | []byte](e *errs, m map[string]V, p *field.Path, size *int) {
	for _, k := range sortedKeys(m) {
		e.addAll(p.Key(k), validation.IsConfigMapKey(k))
		*size += len(k) + len(m[k])
	}
}

func validateConfigMap(e *errs, c *ConfigMap) {
	size := 0
	validateConfigKeys(e, c.Data, field.NewPath("data"), &size)
	validateConfigKeys(e, c.BinaryData, field.NewPath("binaryData"), &size)
	for _, k := range sortedKeys(c.BinaryData) {
		if _, ok := c.Data[k]; ok {
			e.add(field.NewPath("binaryData").Key(k), "duplicate of key %q in data: a key may be in only one of data and binaryData", k)
		}
	}
	if size > MaxConfigSize {
		e.add(field.NewPath("data"), "too long: ConfigMap %q has %d bytes of keys and values; must have at most %d bytes", c.Name, size, MaxConfigSize)
	}
}

func validateSecret(e *errs, s *Secret) {
	size := 0
	dp := field.NewPath("data")
	validateConfigKeys(e, s.Data, dp, &size)
	validateConfigKeys(e, s.StringData, field.NewPath("stringData"), &size)
	if size > MaxConfigSize {
		e.add(dp, "too long: Secret %q has %d bytes of keys and values; must have at most %d bytes", s.Name, size, MaxConfigSize)
	}
	has := func(k string) bool {
		if _, ok := s.Data[k]; ok {
			return true
		}
		_, ok := s.StringData[k]
		return ok
	}
	value := func(k string) []byte {
		if v, ok := s.StringData[k]; ok {
			return []byte(v)
		}
		return s.Data[k]
	}
	tp := field.NewPath("type")
	switch s.Type {
	case "", SecretTypeOpaque:
	case SecretTypeDockerConfigJSON, SecretTypeDockercfg:
		key := DockerConfigJSONKey
		if s.Type == SecretTypeDockercfg {
			key = DockerConfigKey
		}
		switch {
		case !has(key):
			e.add(dp.Key(key), "required: a Secret of type %s must hold the key %q", s.Type, key)
		case !json.Valid(value(key)):
			e.add(dp.Key(key), "invalid: must be valid JSON (a Docker config)")
		}
	case SecretTypeBasicAuth:
		if !has(BasicAuthUsernameKey) && !has(BasicAuthPasswordKey) {
			e.add(dp, "required: a Secret of type %s must hold %q or %q", s.Type, BasicAuthUsernameKey, BasicAuthPasswordKey)
		}
	case SecretTypeSSHAuth:
		if !has(SSHAuthPrivateKey) {
			e.add(dp.Key(SSHAuthPrivateKey), "required: a Secret of type %s must hold the key %q", s.Type, SSHAuthPrivateKey)
		}
	case SecretTypeTLS:
		for _, k := range []string{TLSCertKey, TLSPrivateKeyKey} {
			if !has(k) {
				e.add(dp.Key(k), "required: a Secret of type %s must hold the key %q", s.Type, k)
			}
		}
	default:
		// As Kubernetes, any other type is the user's own; it must be a
		// reasonable name.
		if len(s.Type) > secretTypeLabelLength {
			e.add(tp, "too long: must have at most %d bytes", secretTypeLabelLength)
		}
		if bytes.ContainsAny([]byte(s.Type), " \t\n\x00") {
			e.add(tp, "invalid value %q: must not contain whitespace", s.Type)
		}
	}
}

// validateConfigUpdate refuses changes to an immutable ConfigMap or Secret,
// and a change of a Secret's type, as Kubernetes does.
func validateConfigUpdate(e *errs, old, new Object) {
	immutable := func(b *bool) bool { return b != nil && *b }
	switch o := old.(type) {
	case *ConfigMap:
		n := new.(*ConfigMap)
		if !immutable(o.Immutable) {
			return
		}
		if !immutable(n.Immutable) {
			e.add(field.NewPath("immutable"), "field is immutable when `immutable` is set")
		}
		if !maps.Equal(o.Data, n.Data) {
			e.add(field.NewPath("data"), "field is immutable when `immutable` is set")
		}
		if !maps.EqualFunc(o.BinaryData, n.BinaryData, bytes.Equal) {
			e.add(field.NewPath("binaryData"), "field is immutable when `immutable` is set")
		}
	case *Secret:
		n := new.(*Secret)
		if o.Type != n.Type && !(o.Type == "" && n.Type == SecretTypeOpaque || n.Type == "" && o.Type == SecretTypeOpaque) {
			e.add(field.NewPath("type"), "field is immutable (was %q)", o.Type)
		}
		if !immutable(o.Immutable) {
			return
		}
		if !immutable(n.Immutable) {
			e.add(field.NewPath("immutable"), "field is immutable when `immutable` is set")
		}
		nd := maps.Clone(n.Data)
		if len(n.StringData) > 0 && nd == nil {
			nd = map[string][]byte{}
		}
		for k, v := range n.StringData {
			nd[k] = []byte(v)
		}
		if !maps.EqualFunc(o.Data, nd, bytes.Equal) {
			e.add(field.NewPath("data"), "field is immutable when `immutable` is set")
		}
	}
}

// SecretKeys returns a Secret's keys, sorted.
func (s *Secret) SecretKeys() []string { return slices.Sorted(maps.Keys(s.Data)) }

// The node verb and agent subject of ConfigMaps and Secrets.
const (
	// NodeVerbConfig: body ConfigRequest; reply the ConfigMap or Secret.
	// Answered (403 otherwise) only when a pod bound to the node, in the
	// object's namespace, references it (env, envFrom, a volume, a
	// projected source or imagePullSecrets), as Kubernetes' node
	// authorizer does.
	NodeVerbConfig = "config"
	// AgentVerbConfig: published ConfigNotice whenever a ConfigMap or
	// Secret that a pod bound to the node references changes. It carries
	// no values: the agent fetches the object through NodeVerbConfig.
	AgentVerbConfig = "config"
)

// ConfigRequest names the ConfigMap or Secret a node asks for.
type ConfigRequest struct {
	// Kind is "ConfigMap" or "Secret".
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// ConfigNotice tells an agent that a ConfigMap or Secret its pods use
// changed (Type ADDED, MODIFIED or DELETED).
type ConfigNotice struct {
	Type            string `json:"type"`
	Kind            string `json:"kind"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}
