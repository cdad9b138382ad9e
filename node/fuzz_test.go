package node

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kybernetes/kybernetes/api"
)

// The fuzzers below feed what an attacker (or a broken control plane)
// could send the agent: a message on kyb.agent.<node>.pods and a sync
// reply. Decoding and admission must never panic, and whatever admission
// accepts must be safe to turn into paths and subjects. Seed corpora are
// in testdata/fuzz/FuzzAssignment and testdata/fuzz/FuzzPodSync. CI runs
// them briefly with
//
//	go test -run '^$' -fuzz '^FuzzAssignment$' -fuzztime 30s -fuzzminimizetime 2s ./node
//	go test -run '^$' -fuzz '^FuzzPodSync$' -fuzztime 30s -fuzzminimizetime 2s ./node

const fuzzNode = "node-1"

// fuzzBase is the pods directory the invariants are checked against.
const fuzzBase = "/var/lib/kyb/agent/pods"

func FuzzAssignment(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		as, err := decodeAssignment(data)
		if err != nil {
			return
		}
		checkAdmission(t, &as.Pod)
	})
}

func FuzzPodSync(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		var ps api.PodSync
		if json.Unmarshal(data, &ps) != nil {
			return
		}
		for i := range ps.Pods {
			p := &ps.Pods[i]
			if listable(p, fuzzNode) && (p.Spec.NodeName != fuzzNode || !validUID(p.UID)) {
				t.Fatalf("pod %d listable with node %q uid %q", i, p.Spec.NodeName, p.UID)
			}
			checkAdmission(t, p)
		}
	})
}

// checkAdmission runs admit on p and checks what follows from its answer.
func checkAdmission(t *testing.T, p *api.Pod) {
	t.Helper()
	err := admit(p, fuzzNode)
	if err != nil {
		var st *api.Status
		if !errors.As(err, &st) || st.Code != 422 || len(st.Causes) == 0 {
			t.Fatalf("admit error %v (%T), want a 422 *api.Status with causes", err, err)
		}
		if msg := rejectMessage(fuzzNode, err); len(msg) > maxRejectMessage || (utf8.ValidString(err.Error()) && !utf8.ValidString(msg)) {
			t.Fatalf("reject message of %d bytes (more than %d?) or cut inside a character: %q", len(msg), maxRejectMessage, msg)
		}
		if reportable(p, fuzzNode) && (p.Spec.NodeName != fuzzNode || !validUID(p.UID)) {
			t.Fatalf("reportable pod with node %q uid %q", p.Spec.NodeName, p.UID)
		}
		return
	}
	// Admitted: every path and subject built from it stays where it belongs.
	if !validUID(p.UID) || p.Spec.NodeName != fuzzNode || !reportable(p, fuzzNode) {
		t.Fatalf("admitted pod with uid %q node %q namespace %q name %q", p.UID, p.Spec.NodeName, p.Namespace, p.Name)
	}
	mustBeneath := func(elems ...string) {
		t.Helper()
		got, err := safeJoin(fuzzBase, elems...)
		if err != nil {
			t.Fatalf("admitted pod: path of %q: %v", elems, err)
		}
		if !beneath(fuzzBase, got) || !strings.HasPrefix(got, fuzzBase+"/"+p.UID) {
			t.Fatalf("admitted pod: %q leaves %s", got, fuzzBase)
		}
	}
	mustBeneath(p.UID)
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			mustBeneath(p.UID, "volumes", v.Name)
		}
		if v.HostPath != nil && (!path.IsAbs(v.HostPath.Path) || path.Clean(v.HostPath.Path) != v.HostPath.Path) {
			t.Fatalf("admitted pod: hostPath %q", v.HostPath.Path)
		}
	}
	for _, c := range append(append([]api.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
		mustBeneath(p.UID, c.Name+".0.log")
		// Namespace, name and container name are tokens of the log and
		// event subjects.
		for _, tok := range []string{p.Namespace, p.Name, c.Name} {
			if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n\x00") {
				t.Fatalf("admitted pod: %q is not a plain subject token", tok)
			}
		}
		for _, m := range c.VolumeMounts {
			if !path.IsAbs(m.MountPath) || hasDotDot(m.MountPath) || strings.ContainsRune(m.MountPath, 0) {
				t.Fatalf("admitted pod: mountPath %q", m.MountPath)
			}
		}
	}
}

// fuzzing reports whether the test binary runs a fuzzer (-test.fuzz).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// watchdog crashes the fuzzing worker when an input is still being handled
// after 10 s (Go's fuzzer saves the input of a crashed worker, and does not
// notice a hang by itself); it does nothing unless fuzzing.
func watchdog(data []byte) (stop func()) {
	if !fuzzing() {
		return func() {}
	}
	const hangAfter = 10 * time.Second
	tm := time.AfterFunc(hangAfter, func() {
		panic(fmt.Sprintf("input of %d bytes still running after %v (hang): %.256q", len(data), hangAfter, data))
	})
	return func() { tm.Stop() }
}
