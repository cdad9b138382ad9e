package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// ReasonFailedToRetrieveImagePullSecret is kubelet's event for an
// imagePullSecret that could not be read.
const ReasonFailedToRetrieveImagePullSecret = "FailedToRetrieveImagePullSecret"

// dockerAuth is one login of a docker config.
type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"` // base64 of username:password
}

// parseDockerConfig reads the logins of a kubernetes.io/dockerconfigjson
// ({"auths": {server: login}}) or kubernetes.io/dockercfg ({server:
// login}) Secret, sorted by server.
func parseDockerConfig(s *api.Secret) ([]runtimes.RegistryAuth, error) {
	var auths map[string]dockerAuth
	switch s.Type {
	case api.SecretTypeDockerConfigJSON:
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[api.DockerConfigJSONKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", api.DockerConfigJSONKey, err)
		}
		auths = cfg.Auths
	case api.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[api.DockerConfigKey], &auths); err != nil {
			return nil, fmt.Errorf("%s: %w", api.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("type %s is not %s", s.Type, api.SecretTypeDockerConfigJSON)
	}
	var out []runtimes.RegistryAuth
	for server, a := range auths {
		if a.Username == "" && a.Password == "" && a.Auth != "" {
			b, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("auths[%s].auth: %w", server, err)
			}
			a.Username, a.Password, _ = strings.Cut(string(b), ":")
		}
		out = append(out, runtimes.RegistryAuth{Server: server, Username: a.Username, Password: a.Password})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out, nil
}

// pullAuth returns the logins of the pod's imagePullSecrets. A secret that
// is missing or not a docker config is skipped with a
// FailedToRetrieveImagePullSecret event, and the pull goes on without it,
// as kubelet does.
func (w *podWorker) pullAuth(ctx context.Context, pod *api.Pod, container string) []runtimes.RegistryAuth {
	var out []runtimes.RegistryAuth
	for _, ref := range pod.Spec.ImagePullSecrets {
		obj, err := w.a.configs.get(ctx, "Secret", pod.Namespace, ref.Name)
		var logins []runtimes.RegistryAuth
		if err == nil {
			logins, err = parseDockerConfig(obj.(*api.Secret))
		}
		if err != nil {
			w.event(api.EventTypeWarning, ReasonFailedToRetrieveImagePullSecret, container,
				"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed: %v", ref.Name, err)
			continue
		}
		out = append(out, logins...)
	}
	return out
}

// ensureImage pulls c's image, with the pod's pull secrets when it has
// some and the runtime takes them (runtimes.AuthPuller).
func (w *podWorker) ensureImage(ctx context.Context, c *ctr, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	policy := pullPolicy(c.spec.ImagePullPolicy)
	pod, _ := w.snapshot()
	if ap, ok := w.rt.(runtimes.AuthPuller); ok && pod != nil && len(pod.Spec.ImagePullSecrets) > 0 {
		return ap.EnsureImageWithAuth(ctx, c.spec.Image, policy, w.pullAuth(ctx, pod, c.spec.Name), progress)
	}
	return w.rt.EnsureImage(ctx, c.spec.Image, policy, progress)
}
