package runtimes

import (
	"context"
	"net/url"
	"strings"
)

// RegistryAuth is a login for one registry, taken from a pod's
// imagePullSecrets (a kubernetes.io/dockerconfigjson Secret's "auths").
type RegistryAuth struct {
	// Server names the registry as a docker config does: a host[:port],
	// possibly with a scheme and a path ("https://index.docker.io/v1/").
	Server   string
	Username string
	Password string
}

// AuthPuller is implemented by runtimes whose pulls can authenticate with
// credentials the pod names (imagePullSecrets). EnsureImageWithAuth is
// EnsureImage with the logins to try for the image's registry; the node
// calls it instead of EnsureImage when the pod has pull secrets.
type AuthPuller interface {
	EnsureImageWithAuth(ctx context.Context, ref string, policy PullPolicy, auth []RegistryAuth, progress func(PullProgress)) (*Image, error)
}

// dockerHubHosts are the names Docker Hub goes by in docker configs.
var dockerHubHosts = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

// registryHost returns the host[:port] of a docker config's server key.
func registryHost(server string) string {
	s := server
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			s = u.Host
		}
	}
	s, _, _ = strings.Cut(s, "/")
	return strings.ToLower(s)
}

// AuthFor returns the first login among auth whose server is host (a
// registry's host[:port] as an image reference names it), matching Docker
// Hub's several names to each other, as the kubelet's keyring does.
func AuthFor(auth []RegistryAuth, host string) (RegistryAuth, bool) {
	host = strings.ToLower(host)
	hub := func(h string) bool {
		for _, d := range dockerHubHosts {
			if h == d {
				return true
			}
		}
		return false
	}
	for _, a := range auth {
		h := registryHost(a.Server)
		if h == host || (hub(h) && hub(host)) {
			return a, true
		}
	}
	return RegistryAuth{}, false
}
