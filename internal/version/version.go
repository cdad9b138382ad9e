// Package version holds kybernetes' one version string: the client, the
// server's API service and the agents all report it. Release builds stamp
// it with
//
//	-ldflags "-X github.com/kybernetes/kybernetes/internal/version.Version=v1.2.3"
//
// (`go tool task release` does, from `git describe`).
package version

import (
	"regexp"
	"strings"
)

// Version is the version of this build, "v" then semantic version.
var Version = "v0.1.0-dev"

var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// Semver is Version without its "v", as a NATS micro service version must
// be; a version that is not semantic (a build stamped with a bare commit)
// gives "0.0.0-" and the version made safe.
func Semver() string {
	v := strings.TrimPrefix(Version, "v")
	if semver.MatchString(v) {
		return v
	}
	safe := regexp.MustCompile(`[^0-9A-Za-z.-]+`).ReplaceAllString(v, "-")
	return "0.0.0-" + strings.Trim(safe, "-.")
}
