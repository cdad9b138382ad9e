package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kybernetes/kybernetes/api"
)

// ReasonRejected is the reason of a pod the agent refused to run: its
// phase is Failed and its message names every field at fault. As the
// kubelet's admission does, the agent checks every pod it is handed, even
// from the control plane, and starts nothing and creates nothing on the host
// for a pod it refuses.
const ReasonRejected = "Rejected"

// maxRejectMessage bounds the message of a rejected pod's status (the
// causes of a hostile pod could be many and long).
const maxRejectMessage = 1024

// decodeAssignment decodes one message of kyb.agent.<node>.pods. What it
// returns is still to be checked (admit, validUID).
func decodeAssignment(data []byte) (*api.Assignment, error) {
	var as api.Assignment
	if err := json.Unmarshal(data, &as); err != nil {
		return nil, fmt.Errorf("decode assignment: %w", err)
	}
	return &as, nil
}

// admit checks a pod the agent is handed (an assignment or a pod of a sync
// reply) before anything is done for it. It returns nil or a 422 *api.Status
// whose causes name every field at fault:
//
//   - metadata.uid is a UUID in the canonical lower-case form the apiserver
//     gives (it names the pod's directory under the data dir);
//   - metadata.namespace and metadata.name are DNS-1123 labels (they are
//     tokens of NATS subjects and names of runtime objects);
//   - spec.nodeName is this node;
//   - hostPath paths are absolute and clean (no `..`, no `//`, no trailing
//     `/`) and hold no NUL; mount paths are absolute with no `..` element
//     and no NUL;
//   - api.Validate accepts the pod (container and volume names are DNS-1123
//     labels, and so on).
//
// It is safe for concurrent use as long as p is not being changed.
func admit(p *api.Pod, node string) error {
	var causes []api.StatusCause
	add := func(f *field.Path, format string, args ...any) {
		causes = append(causes, api.StatusCause{Field: f.String(), Message: fmt.Sprintf(format, args...)})
	}
	meta := field.NewPath("metadata")
	if !validUID(p.UID) {
		add(meta.Child("uid"), "must be a UUID in canonical lower-case form (got %s)", clip(p.UID))
	}
	if p.Namespace == "" {
		add(meta.Child("namespace"), "required")
	}
	if p.Spec.NodeName != node {
		add(field.NewPath("spec", "nodeName"), "must be this node, %q (got %s)", node, clip(p.Spec.NodeName))
	}
	checkPaths(p, add)
	if err := api.Validate(p); err != nil {
		var st *api.Status
		if !errors.As(err, &st) {
			return fmt.Errorf("validate pod: %w", err)
		}
		causes = append(causes, st.Causes...)
	}
	if len(causes) == 0 {
		return nil
	}
	name := p.Name
	if len(name) > 64 {
		name = name[:64] + "..."
	}
	return api.NewInvalid("Pod", name, causes)
}

// checkPaths checks the host and container paths of p's volumes and mounts.
func checkPaths(p *api.Pod, add func(*field.Path, string, ...any)) {
	spec := field.NewPath("spec")
	for i, v := range p.Spec.Volumes {
		if v.HostPath == nil || v.HostPath.Path == "" { // "" is api.Validate's
			continue
		}
		hp := v.HostPath.Path
		fp := spec.Child("volumes").Index(i).Child("hostPath", "path")
		switch {
		case strings.ContainsRune(hp, 0):
			add(fp, "must not contain a NUL byte")
		case !path.IsAbs(hp):
			add(fp, "must be an absolute path (got %s)", clip(hp))
		case hasDotDot(hp):
			add(fp, "must not contain '..' (got %s)", clip(hp))
		case path.Clean(hp) != hp:
			add(fp, "must be a clean path, %q (got %s)", path.Clean(hp), clip(hp))
		}
	}
	check := func(cs []api.Container, p *field.Path) {
		for i, c := range cs {
			for j, m := range c.VolumeMounts {
				fp := p.Index(i).Child("volumeMounts").Index(j).Child("mountPath")
				switch {
				case strings.ContainsRune(m.MountPath, 0):
					add(fp, "must not contain a NUL byte")
				case hasDotDot(m.MountPath):
					add(fp, "must not contain '..' (got %s)", clip(m.MountPath))
				}
			}
		}
	}
	check(p.Spec.InitContainers, spec.Child("initContainers"))
	check(p.Spec.Containers, spec.Child("containers"))
}

// hasDotDot reports whether p has a `..` element.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// reportable reports whether the agent may tell the control plane about a
// pod it refused: one bound to this node with a sane namespace, name and
// uid. Anything else is only logged: a report on it could name another
// node's pod, or be refused itself.
func reportable(p *api.Pod, node string) bool {
	return p.Spec.NodeName == node && validUID(p.UID) &&
		len(validation.IsDNS1123Label(p.Namespace)) == 0 && len(validation.IsDNS1123Label(p.Name)) == 0
}

// listable reports whether a pod of a sync reply belongs in the agent's
// list at all: bound to this node, with a sane uid. Workers of pods that
// are not listed are stopped and removed.
func listable(p *api.Pod, node string) bool {
	return p.Spec.NodeName == node && validUID(p.UID)
}

// validUID reports whether s is a UUID in the canonical lower-case form
// (8-4-4-4-12 hex digits), as the apiserver generates them.
func validUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// clip quotes s for a message or a log line, cut to 64 bytes: a hostile
// value must not bloat what the agent writes.
func clip(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:maxLen], len(s))
}

// rejectMessage is the status message of a refused pod.
func rejectMessage(node string, err error) string {
	var parts []string
	var st *api.Status
	if errors.As(err, &st) && len(st.Causes) > 0 {
		for _, c := range st.Causes {
			parts = append(parts, c.Field+": "+c.Message)
		}
	} else {
		parts = append(parts, err.Error())
	}
	msg := fmt.Sprintf("pod rejected by node %s: %s", node, strings.Join(parts, "; "))
	if len(msg) > maxRejectMessage {
		cut := maxRejectMessage - 3
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut-- // whole characters only
		}
		msg = msg[:cut] + "..."
	}
	return msg
}

// admitLocked decides whether the agent applies a pod it was handed (not a
// removal). A refused pod is logged and, when reportable, reported Failed
// with ReasonRejected (and Finalized once marked for deletion, since
// nothing of it runs here); the update of a pod that already has a worker
// is dropped and the worker keeps the last pod it accepted. Callers hold
// a.mu.
func (a *Agent) admitLocked(p *api.Pod) bool {
	err := admit(p, a.cfg.Name)
	if err == nil {
		return true
	}
	// The message is capped: a hostile pod's causes could fill megabytes of logs.
	msg := rejectMessage(a.cfg.Name, err)
	log := a.log.With("pod", clip(p.Namespace)+"/"+clip(p.Name), "uid", clip(p.UID))
	if !reportable(p, a.cfg.Name) {
		log.Warn("refusing a pod handed to this agent; not reporting it (not bound here or no sane namespace, name and uid)", "err", msg)
		return false
	}
	if a.workers[p.UID] != nil {
		log.Warn("refusing an update of a running pod; it keeps the last spec it was accepted with", "err", msg)
		return false
	}
	if t, ok := a.tombstones[p.UID]; ok && (resourceVersion(p) == 0 || resourceVersion(p) <= t.rv) {
		return false // removed already
	}
	st := api.PodStatus{Phase: api.PodFailed, Reason: ReasonRejected, Message: msg}
	terminal := p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded
	switch {
	case p.DeletionTimestamp != nil:
		// Nothing of it runs here: it may go at once.
		if terminal {
			st = p.Status
		}
	case terminal:
		// Reported already (or it completed before it became invalid to
		// this agent): leave its status alone. Its status write comes back
		// as an update, so this is also what ends the exchange.
		return false
	default:
		log.Warn("refusing a pod", "err", msg)
	}
	a.reporter.put(&api.PodStatusUpdate{
		Namespace: p.Namespace, Name: p.Name, UID: p.UID, Status: st, Finalized: p.DeletionTimestamp != nil,
	})
	return false
}

// maxPathElem is the longest name a path element may have (NAME_MAX).
const maxPathElem = 255

// checkPathElem returns what makes elem unfit to be one element of a path
// the agent builds: empty, `.` or `..`, a `/`, a NUL, or over 255 bytes.
func checkPathElem(elem string) error {
	switch {
	case elem == "":
		return errors.New("empty path element")
	case elem == "." || elem == "..":
		return fmt.Errorf("path element %q is not a name", elem)
	case strings.ContainsAny(elem, "/\x00"):
		return fmt.Errorf("path element %s holds a '/' or a NUL", clip(elem))
	case len(elem) > maxPathElem:
		return fmt.Errorf("path element %s is longer than %d bytes", clip(elem), maxPathElem)
	}
	return nil
}

// safeJoin joins elems beneath base, each of which must be one name
// (checkPathElem): the result is always base itself or a path beneath it,
// whatever the elements hold. Every path the agent builds from pod fields
// (uid, container and volume names) goes through it.
func safeJoin(base string, elems ...string) (string, error) {
	for _, e := range elems {
		if err := checkPathElem(e); err != nil {
			return "", fmt.Errorf("join path beneath %s: %w", base, err)
		}
	}
	base = filepath.Clean(base)
	p := filepath.Join(append([]string{base}, elems...)...)
	if !beneath(base, p) {
		return "", fmt.Errorf("join path beneath %s: %s escapes it", base, clip(p))
	}
	return p, nil
}

// beneath reports whether p is base or lies beneath it, lexically.
func beneath(base, p string) bool {
	rel, err := filepath.Rel(filepath.Clean(base), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// podsDir is the directory of every pod's directory.
func (a *Agent) podsDir() string { return filepath.Join(a.cfg.DataDir, "pods") }

// podPath returns <data dir>/pods/<uid>/<elems...>, or an error when uid or
// an element is not a single name.
func (a *Agent) podPath(uid string, elems ...string) (string, error) {
	return safeJoin(a.podsDir(), append([]string{uid}, elems...)...)
}

// removePodDir removes a pod's directory and everything in it. The removal
// is made through an os.Root on the pods directory, so neither a hostile
// uid nor a symbolic link planted in the tree can make it remove anything
// outside.
func (a *Agent) removePodDir(uid string) error {
	if err := checkPathElem(uid); err != nil {
		return fmt.Errorf("remove pod dir: %w", err)
	}
	// The tmpfs of its secret volumes first (secretmount_linux.go).
	if err := unmountBeneath(filepath.Join(a.podsDir(), uid)); err != nil {
		return fmt.Errorf("remove pod dir: %w", err)
	}
	root, err := os.OpenRoot(a.podsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove pod dir: %w", err)
	}
	defer root.Close()
	if err := root.RemoveAll(uid); err != nil {
		return fmt.Errorf("remove pod dir %s: %w", uid, err)
	}
	return nil
}
