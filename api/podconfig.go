package api

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// LocalObjectReference names an object of the same namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

// EnvVarSource is where an environment variable's value comes from:
// exactly one of its fields is set.
type EnvVarSource struct {
	FieldRef         *ObjectFieldSelector   `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
	ConfigMapKeyRef  *ConfigMapKeySelector  `json:"configMapKeyRef,omitempty"`
	SecretKeyRef     *SecretKeySelector     `json:"secretKeyRef,omitempty"`
}

// ObjectFieldSelector selects a field of the pod (FieldPaths).
type ObjectFieldSelector struct {
	// APIVersion is "v1" (the default).
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// ResourceFieldSelector selects a container's request or limit (e.g.
// limits.memory), divided by Divisor (default 1) and rounded up.
type ResourceFieldSelector struct {
	// ContainerName defaults to the container itself in env; a volume
	// must name it.
	ContainerName string             `json:"containerName,omitempty"`
	Resource      string             `json:"resource"`
	Divisor       *resource.Quantity `json:"divisor,omitempty"`
}

// ConfigMapKeySelector selects one key of a ConfigMap.
type ConfigMapKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	// Optional true makes a missing ConfigMap or key leave the variable
	// unset instead of holding the container back.
	Optional *bool `json:"optional,omitempty"`
}

// SecretKeySelector selects one key of a Secret.
type SecretKeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// EnvFromSource adds every key of a ConfigMap or Secret (exactly one) as a
// variable, each name prefixed with Prefix.
type EnvFromSource struct {
	Prefix       string              `json:"prefix,omitempty"`
	ConfigMapRef *ConfigMapEnvSource `json:"configMapRef,omitempty"`
	SecretRef    *SecretEnvSource    `json:"secretRef,omitempty"`
}

// ConfigMapEnvSource names a ConfigMap for EnvFrom.
type ConfigMapEnvSource struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// SecretEnvSource names a Secret for EnvFrom.
type SecretEnvSource struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// KeyToPath writes one key of a ConfigMap or Secret to a relative Path of
// the volume, with Mode (default: the volume's defaultMode).
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode,omitempty"`
}

// DefaultVolumeMode is the mode of a configMap, secret, downwardAPI or
// projected volume's files when defaultMode is unset (0644, Kubernetes' 420).
const DefaultVolumeMode int32 = 0o644

// ConfigMapVolumeSource is a volume of a ConfigMap's keys as files: every
// key, or only Items.
type ConfigMapVolumeSource struct {
	Name        string      `json:"name"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// SecretVolumeSource is a volume of a Secret's keys as files.
type SecretVolumeSource struct {
	SecretName  string      `json:"secretName"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// DownwardAPIVolumeFile is one file of the pod's own fields.
type DownwardAPIVolumeFile struct {
	Path             string                 `json:"path"`
	FieldRef         *ObjectFieldSelector   `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
	Mode             *int32                 `json:"mode,omitempty"`
}

// DownwardAPIVolumeSource is a volume of the pod's own fields as files.
type DownwardAPIVolumeSource struct {
	Items       []DownwardAPIVolumeFile `json:"items,omitempty"`
	DefaultMode *int32                  `json:"defaultMode,omitempty"`
}

// ProjectedVolumeSource is several sources in one directory.
type ProjectedVolumeSource struct {
	Sources     []VolumeProjection `json:"sources"`
	DefaultMode *int32             `json:"defaultMode,omitempty"`
}

// VolumeProjection is one source of a projected volume. Service account
// tokens and cluster trust bundles are not implemented and refused (422).
type VolumeProjection struct {
	ConfigMap           *ConfigMapProjection   `json:"configMap,omitempty"`
	Secret              *SecretProjection      `json:"secret,omitempty"`
	DownwardAPI         *DownwardAPIProjection `json:"downwardAPI,omitempty"`
	ServiceAccountToken json.RawMessage        `json:"serviceAccountToken,omitempty"`
	ClusterTrustBundle  json.RawMessage        `json:"clusterTrustBundle,omitempty"`
}

// ConfigMapProjection is a ConfigMap in a projected volume.
type ConfigMapProjection struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// SecretProjection is a Secret in a projected volume.
type SecretProjection struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// DownwardAPIProjection is the pod's fields in a projected volume.
type DownwardAPIProjection struct {
	Items []DownwardAPIVolumeFile `json:"items,omitempty"`
}

// IsOptional reports whether b is set and true.
func IsOptional(b *bool) bool { return b != nil && *b }

// Field paths of the downward API.
var (
	// envFieldPaths may be selected by an env var's fieldRef.
	envFieldPaths = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
		"spec.serviceAccountName", "status.podIP", "status.podIPs", "status.hostIP", "status.hostIPs"}
	// volumeFieldPaths may be selected by a downwardAPI volume's file.
	volumeFieldPaths = []string{"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"}
	// subscriptRE matches metadata.labels['key'] and metadata.annotations['key'].
	subscriptRE = regexp.MustCompile(`^metadata\.(labels|annotations)\['(.*)'\]$`)
	// resourceFieldNames may be selected by a resourceFieldRef.
	resourceFieldNames = []string{"limits.cpu", "limits.memory", "limits.ephemeral-storage",
		"requests.cpu", "requests.memory", "requests.ephemeral-storage"}
)

// SplitFieldSubscript returns the map ("labels" or "annotations") and key
// of a path like metadata.labels['app'].
func SplitFieldSubscript(fieldPath string) (mapName, key string, ok bool) {
	m := subscriptRE.FindStringSubmatch(fieldPath)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// defaultPodConfig sets the defaultMode of configMap, secret, downwardAPI
// and projected volumes, and the apiVersion of fieldRefs, as Kubernetes.
func defaultPodConfig(s *PodSpec) {
	mode := func(m **int32) {
		if *m == nil {
			v := DefaultVolumeMode
			*m = &v
		}
	}
	fieldRef := func(f *ObjectFieldSelector) {
		if f != nil && f.APIVersion == "" {
			f.APIVersion = "v1"
		}
	}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		switch {
		case v.ConfigMap != nil:
			mode(&v.ConfigMap.DefaultMode)
		case v.Secret != nil:
			mode(&v.Secret.DefaultMode)
		case v.DownwardAPI != nil:
			mode(&v.DownwardAPI.DefaultMode)
			for j := range v.DownwardAPI.Items {
				fieldRef(v.DownwardAPI.Items[j].FieldRef)
			}
		case v.Projected != nil:
			mode(&v.Projected.DefaultMode)
			for _, src := range v.Projected.Sources {
				if src.DownwardAPI != nil {
					for j := range src.DownwardAPI.Items {
						fieldRef(src.DownwardAPI.Items[j].FieldRef)
					}
				}
			}
		}
	}
	for _, cs := range [][]Container{s.InitContainers, s.Containers} {
		for i := range cs {
			for j := range cs[i].Env {
				if vf := cs[i].Env[j].ValueFrom; vf != nil {
					fieldRef(vf.FieldRef)
				}
			}
		}
	}
}

// validateObjectRefName checks the name of a referenced ConfigMap or Secret.
func validateObjectRefName(e *errs, name string, p *field.Path) {
	if name == "" {
		e.required(p)
		return
	}
	e.addAll(p, validation.IsDNS1123Subdomain(name))
}

func validateKeyRef(e *errs, name, key string, p *field.Path) {
	validateObjectRefName(e, name, p.Child("name"))
	if key == "" {
		e.required(p.Child("key"))
	} else {
		e.addAll(p.Child("key"), validation.IsConfigMapKey(key))
	}
}

func validateFieldRef(e *errs, f *ObjectFieldSelector, p *field.Path, allowed []string) {
	if f.APIVersion != "" && f.APIVersion != "v1" {
		e.unsupported(p.Child("apiVersion"), f.APIVersion, "v1")
	}
	fp := p.Child("fieldPath")
	switch {
	case f.FieldPath == "":
		e.required(fp)
	case slices.Contains(allowed, f.FieldPath):
	default:
		m, key, ok := SplitFieldSubscript(f.FieldPath)
		if !ok {
			e.unsupported(fp, f.FieldPath, append(slices.Clone(allowed), "metadata.labels['<key>']", "metadata.annotations['<key>']")...)
			return
		}
		if m == "labels" || m == "annotations" {
			e.addAll(fp, validation.IsQualifiedName(strings.ToLower(key)))
		}
	}
}

func validateResourceFieldRef(e *errs, r *ResourceFieldSelector, p *field.Path, c *Container, containers map[string]bool, needName bool) {
	if r.ContainerName == "" {
		if needName {
			e.required(p.Child("containerName"))
		}
	} else if !containers[r.ContainerName] {
		e.add(p.Child("containerName"), "not found: no container named %q in the pod", r.ContainerName)
	}
	if !slices.Contains(resourceFieldNames, r.Resource) {
		e.unsupported(p.Child("resource"), r.Resource, resourceFieldNames...)
		return
	}
	if r.Divisor != nil {
		d := r.Divisor
		ok := d.Sign() > 0
		if strings.HasSuffix(r.Resource, ".cpu") {
			ok = ok && (d.Cmp(resource.MustParse("1")) == 0 || d.Cmp(resource.MustParse("1m")) == 0)
		}
		if !ok {
			e.add(p.Child("divisor"), "invalid value %q: must be a positive quantity (1 or 1m for cpu)", d.String())
		}
	}
}

// validateEnvSources checks a container's env valueFrom and envFrom;
// containers are the names of the pod's containers.
func validateEnvSources(e *errs, c *Container, p *field.Path, containers map[string]bool) {
	for i, env := range c.Env {
		vf := env.ValueFrom
		if vf == nil {
			continue
		}
		ep := p.Child("env").Index(i)
		vp := ep.Child("valueFrom")
		if env.Value != "" {
			e.add(vp, "may not be specified when `value` is not empty")
		}
		n := 0
		if vf.FieldRef != nil {
			n++
			validateFieldRef(e, vf.FieldRef, vp.Child("fieldRef"), envFieldPaths)
		}
		if vf.ResourceFieldRef != nil {
			n++
			validateResourceFieldRef(e, vf.ResourceFieldRef, vp.Child("resourceFieldRef"), c, containers, false)
		}
		if r := vf.ConfigMapKeyRef; r != nil {
			n++
			validateKeyRef(e, r.Name, r.Key, vp.Child("configMapKeyRef"))
		}
		if r := vf.SecretKeyRef; r != nil {
			n++
			validateKeyRef(e, r.Name, r.Key, vp.Child("secretKeyRef"))
		}
		if n != 1 {
			e.add(vp, "must specify exactly one of fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef (got %d)", n)
		}
	}
	for i, ef := range c.EnvFrom {
		fp := p.Child("envFrom").Index(i)
		if ef.Prefix != "" && strings.Contains(ef.Prefix, "=") {
			e.add(fp.Child("prefix"), "must not contain '='")
		}
		n := 0
		if ef.ConfigMapRef != nil {
			n++
			validateObjectRefName(e, ef.ConfigMapRef.Name, fp.Child("configMapRef", "name"))
		}
		if ef.SecretRef != nil {
			n++
			validateObjectRefName(e, ef.SecretRef.Name, fp.Child("secretRef", "name"))
		}
		if n != 1 {
			e.add(fp, "must specify exactly one of configMapRef or secretRef (got %d)", n)
		}
	}
}

func validateMode(e *errs, m *int32, p *field.Path) {
	if m != nil && (*m < 0 || *m > 0o777) {
		e.add(p, "must be a number between 0 and 0777 (octal), both inclusive (got %d)", *m)
	}
}

// validateFilePath checks a volume file's relative path, as Kubernetes:
// not absolute, no '..' element.
func validateFilePath(e *errs, fpath string, p *field.Path, seen map[string]bool) {
	switch {
	case fpath == "":
		e.required(p)
	case path.IsAbs(fpath):
		e.add(p, "must be a relative path (got %q)", fpath)
	case slices.Contains(strings.Split(fpath, "/"), ".."):
		e.add(p, "must not contain '..' (got %q)", fpath)
	case strings.HasPrefix(fpath, "..") || len(fpath) > 4096 || strings.ContainsRune(fpath, 0):
		e.add(p, "invalid value %q: must not start with '..', hold NUL or be over 4096 bytes", fpath)
	case seen[path.Clean(fpath)]:
		e.add(p, "duplicate value %q", fpath)
	}
	seen[path.Clean(fpath)] = true
}

func validateItems(e *errs, items []KeyToPath, p *field.Path, seen map[string]bool) {
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			e.required(ip.Child("key"))
		} else {
			e.addAll(ip.Child("key"), validation.IsConfigMapKey(it.Key))
		}
		validateFilePath(e, it.Path, ip.Child("path"), seen)
		validateMode(e, it.Mode, ip.Child("mode"))
	}
}

func validateDownwardFiles(e *errs, items []DownwardAPIVolumeFile, p *field.Path, containers map[string]bool, seen map[string]bool) {
	for i, it := range items {
		ip := p.Index(i)
		validateFilePath(e, it.Path, ip.Child("path"), seen)
		validateMode(e, it.Mode, ip.Child("mode"))
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			e.add(ip, "must specify only one of fieldRef and resourceFieldRef")
		case it.FieldRef != nil:
			validateFieldRef(e, it.FieldRef, ip.Child("fieldRef"), volumeFieldPaths)
		case it.ResourceFieldRef != nil:
			validateResourceFieldRef(e, it.ResourceFieldRef, ip.Child("resourceFieldRef"), nil, containers, true)
		default:
			e.add(ip, "must specify one of fieldRef and resourceFieldRef")
		}
	}
}

// validateConfigVolume checks a configMap, secret, downwardAPI or projected
// volume source and returns how many of them v has.
func validateConfigVolume(e *errs, v *Volume, p *field.Path, containers map[string]bool) int {
	n := 0
	if s := v.ConfigMap; s != nil {
		n++
		sp := p.Child("configMap")
		validateObjectRefName(e, s.Name, sp.Child("name"))
		validateItems(e, s.Items, sp.Child("items"), map[string]bool{})
		validateMode(e, s.DefaultMode, sp.Child("defaultMode"))
	}
	if s := v.Secret; s != nil {
		n++
		sp := p.Child("secret")
		validateObjectRefName(e, s.SecretName, sp.Child("secretName"))
		validateItems(e, s.Items, sp.Child("items"), map[string]bool{})
		validateMode(e, s.DefaultMode, sp.Child("defaultMode"))
	}
	if s := v.DownwardAPI; s != nil {
		n++
		sp := p.Child("downwardAPI")
		validateDownwardFiles(e, s.Items, sp.Child("items"), containers, map[string]bool{})
		validateMode(e, s.DefaultMode, sp.Child("defaultMode"))
	}
	if s := v.Projected; s != nil {
		n++
		sp := p.Child("projected")
		validateMode(e, s.DefaultMode, sp.Child("defaultMode"))
		seen := map[string]bool{}
		for i, src := range s.Sources {
			srcp := sp.Child("sources").Index(i)
			k := 0
			if c := src.ConfigMap; c != nil {
				k++
				validateObjectRefName(e, c.Name, srcp.Child("configMap", "name"))
				validateItems(e, c.Items, srcp.Child("configMap", "items"), seen)
			}
			if c := src.Secret; c != nil {
				k++
				validateObjectRefName(e, c.Name, srcp.Child("secret", "name"))
				validateItems(e, c.Items, srcp.Child("secret", "items"), seen)
			}
			if c := src.DownwardAPI; c != nil {
				k++
				validateDownwardFiles(e, c.Items, srcp.Child("downwardAPI", "items"), containers, seen)
			}
			if len(src.ServiceAccountToken) > 0 {
				k++
				e.add(srcp.Child("serviceAccountToken"), "not implemented by kybernetes yet: no service account tokens exist")
			}
			if len(src.ClusterTrustBundle) > 0 {
				k++
				e.add(srcp.Child("clusterTrustBundle"), "not implemented by kybernetes yet")
			}
			if k != 1 {
				e.add(srcp, "must specify exactly one source (configMap, secret, downwardAPI; got %d)", k)
			}
		}
	}
	return n
}

// validateImagePullSecrets checks the names of a pod's imagePullSecrets.
func validateImagePullSecrets(e *errs, s *PodSpec, p *field.Path) {
	for i, r := range s.ImagePullSecrets {
		validateObjectRefName(e, r.Name, p.Child("imagePullSecrets").Index(i).Child("name"))
	}
	if s.ServiceAccountName != "" {
		e.addAll(p.Child("serviceAccountName"), validation.IsDNS1123Subdomain(s.ServiceAccountName))
	}
}

// ConfigRef is a ConfigMap or Secret a pod references.
type ConfigRef struct {
	// Kind is "ConfigMap" or "Secret".
	Kind string
	Name string
}

func (r ConfigRef) String() string { return fmt.Sprintf("%s %q", r.Kind, r.Name) }

// ConfigRefs returns every ConfigMap and Secret the pod references (env
// valueFrom, envFrom, volumes, projected sources, imagePullSecrets), each
// once, in first-seen order: what its node may read.
func ConfigRefs(s *PodSpec) []ConfigRef {
	var out []ConfigRef
	add := func(kind, name string) {
		r := ConfigRef{Kind: kind, Name: name}
		if name != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, r := range s.ImagePullSecrets {
		add("Secret", r.Name)
	}
	for _, cs := range [][]Container{s.InitContainers, s.Containers} {
		for _, c := range cs {
			for _, env := range c.Env {
				if vf := env.ValueFrom; vf != nil {
					if vf.ConfigMapKeyRef != nil {
						add("ConfigMap", vf.ConfigMapKeyRef.Name)
					}
					if vf.SecretKeyRef != nil {
						add("Secret", vf.SecretKeyRef.Name)
					}
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					add("ConfigMap", ef.ConfigMapRef.Name)
				}
				if ef.SecretRef != nil {
					add("Secret", ef.SecretRef.Name)
				}
			}
		}
	}
	for _, v := range s.Volumes {
		if v.ConfigMap != nil {
			add("ConfigMap", v.ConfigMap.Name)
		}
		if v.Secret != nil {
			add("Secret", v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					add("ConfigMap", src.ConfigMap.Name)
				}
				if src.Secret != nil {
					add("Secret", src.Secret.Name)
				}
			}
		}
	}
	return out
}
