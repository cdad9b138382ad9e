package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// kyb attach -i sends its input to a module's own stdin and prints its
// output; with stdinOnce the end of input is the module's, which exits, and
// kyb exits with its code; -i to a container without stdin is refused with
// the reason.
func TestAttachCommand(t *testing.T) {
	url := startCluster(t)
	startWasmAgent(t)
	prog := "file://" + runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, "./runtimes/runtimetest/testprog", "wasip1", "wasm"), filepath.Join(os.TempDir(), "kyb-wasm-test-cache"))
	applyText(t, url, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  nodeName: n1
  runtimeClassName: wasm
  containers: [{name: app, image: %q, args: [stdin, out, input ended, exit, "3"], stdin: true, stdinOnce: true}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  nodeName: n1
  runtimeClassName: wasm
  containers: [{name: app, image: %q, args: [sleep, forever]}]
`, prog, prog))
	waitPodRunning(t, url, "once")
	waitPodRunning(t, url, "plain")

	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"--server", url, "attach", "-i", "once"}, Streams{In: strings.NewReader("hello\n"), Out: &out, Err: &errOut})
	var exit ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || out.String() != "hello\ninput ended\n" {
		t.Errorf("kyb attach -i once: %q %q %v; want the echo, the end of input and exit 3", out.String(), errOut.String(), err)
	}
	if _, _, err := kybOut(url, "attach", "-i", "plain"); err == nil || !strings.Contains(err.Error(), "container app was not created with stdin: true") {
		t.Errorf("kyb attach -i plain: %v; want the reason", err)
	}
}
