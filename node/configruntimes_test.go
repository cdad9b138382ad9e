package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// configPod is a pod of the test program that prints its ConfigMap and
// Secret values from env and from files, and is ready only once the file
// /conf/ready exists (a key the ConfigMap gets later): the readiness probe
// reads the mount from inside, so the pod turns ready only if the update
// reaches the running container.
func configPod(name string) *api.Pod {
	p := probePod(name, func(c *api.Container) {
		c.Args = []string{"env", "FROM_CM", "env", "FROM_SECRET", "env", "HOSTNAME", "env", "POD_NS",
			"cat", "/conf/greeting", "cat", "/sec/password", "sleep", "forever"}
		c.Env = []api.EnvVar{
			{Name: "FROM_CM", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.ConfigMapKeySelector{Name: "web-config", Key: "greeting"}}},
			{Name: "FROM_SECRET", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "web-secret", Key: "password"}}},
			{Name: "POD_NS", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		}
		c.VolumeMounts = []api.VolumeMount{{Name: "conf", MountPath: "/conf"}, {Name: "sec", MountPath: "/sec"}}
		c.ReadinessProbe = catProbe("/conf/ready", 1)
	})
	p.Spec.Volumes = []api.Volume{
		{Name: "conf", ConfigMap: &api.ConfigMapVolumeSource{Name: "web-config"}},
		{Name: "sec", Secret: &api.SecretVolumeSource{SecretName: "web-secret"}},
	}
	api.Default(p)
	return p
}

// checkConfigPod runs configPod on h and checks what it printed, then
// that a ConfigMap update reaches its mounted files without a restart.
func checkConfigPod(t *testing.T, h *harness, pod *api.Pod) {
	srv := serveConfigs(t, h)
	srv.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "web-config"}, Data: map[string]string{"greeting": "hello-from-cm"}})
	srv.put(&api.Secret{ObjectMeta: api.ObjectMeta{Name: "web-secret"}, Data: map[string][]byte{"password": []byte("s3cr3t-pw")}})
	p := h.cp.assign(pod)
	want := []string{"FROM_CM=hello-from-cm", "FROM_SECRET=s3cr3t-pw", "HOSTNAME=" + pod.Name, "POD_NS=default", "hello-from-cm", "s3cr3t-pw"}
	testutil.Eventually(t, 60*time.Second, func() error {
		got := strings.Join(h.logLines("default", pod.Name, pod.Spec.Containers[0].Name), "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				st, _, _ := containerStatus(t, h.cp, p.UID)
				return fmt.Errorf("output %q lacks %q (%s)", got, w, describe(st.ContainerStatuses))
			}
		}
		return nil
	})
	if st, cs, err := containerStatus(t, h.cp, p.UID); err != nil || cs.Ready {
		t.Fatalf("ready before /conf/ready exists: %v %s", err, describe(st.ContainerStatuses))
	}
	srv.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "web-config"}, Data: map[string]string{"greeting": "hello-from-cm", "ready": "yes"}})
	testutil.Eventually(t, 60*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if !cs.Ready || cs.RestartCount != 0 {
			return fmt.Errorf("%s; want ready (the probe sees the updated mount) without a restart", describe(st.ContainerStatuses))
		}
		return nil
	})
	h.cp.markDeleted(p.UID, ptr(int64(0)))
	testutil.Eventually(t, 30*time.Second, func() error {
		if u := h.cp.last(p.UID); u == nil || !u.Finalized {
			return fmt.Errorf("pod not finalized yet")
		}
		return nil
	})
}

// A Secret and a ConfigMap reach a wasm module as env and as files of
// read-only preopened directories; an update is seen in the mount.
func TestWasmConfigEnvAndFiles(t *testing.T) {
	h := wasmProbeHarness(t)
	pod := configPod("wasm-config")
	pod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	pod.Spec.Containers[0].Image = wasmModule(t, "./runtimes/runtimetest/testprog")
	api.Default(pod)
	checkConfigPod(t, h, pod)
}

// The same for a container on containerd: env, read-only bind mounts of
// the volumes, the pod's host name, and an update seen in the mount.
func TestContainerdConfigEnvAndFiles(t *testing.T) {
	h, ref := containerdProbeHarness(t)
	pod := configPod("ctr-config")
	c := &pod.Spec.Containers[0]
	c.Image, c.ImagePullPolicy = ref, api.PullIfNotPresent
	c.ReadinessProbe.Exec.Command = []string{"/testprog", "cat", "/conf/ready"}
	checkConfigPod(t, h, pod)
}
