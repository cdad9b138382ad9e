// Package containerd runs pods as containerd containers. It is the only
// package of kybernetes that imports containerd.
//
// It owns, on one node:
//   - images: pull (with progress, plain HTTP for insecure registries and
//     localhost), import of OCI or docker archives, listing;
//   - pod sandboxes: a network namespace per pod, bind-mounted under
//     Config.StateDir/netns and wired by CNI (bridge kyb0 with host-local
//     IPAM on the node's pod CIDR, portmap for host ports, loopback), plus a
//     JSON record per sandbox under Config.StateDir/sandboxes so that
//     ListSandboxes works after an agent restart (written as pending as
//     soon as the namespace exists, so a process dying in CreateSandbox
//     leaves a not-ready sandbox to remove, not a stray mount); at most one
//     ready sandbox per pod UID (a second CreateSandbox returns it);
//     RemoveSandbox releases the network and the namespace even when it is
//     cancelled or a container cannot be removed, and CNI calls, once
//     started, are never cut short;
//   - containers: created in the pod's network namespace with the image's
//     config overridden the Kubernetes way (command replaces ENTRYPOINT, args
//     replace CMD), cgroup limits, stdout and stderr appended to a log file by
//     the containerd shim (so logs survive agent restarts), and labels that
//     carry pod, container name, attempt and sandbox so that a new Runtime
//     adopts the containers of an earlier one;
//   - security (security.go): a container's runtimes.Security applied to its
//     OCI spec as containerd's CRI plugin does: user and groups, a refusal
//     (CreateContainerConfigError) of runAsNonRoot with uid 0, capabilities
//     on top of containerd's default set, no_new_privs, containerd's default
//     seccomp profile unless Unconfined or a Localhost profile from
//     Config.SeccompProfileDir, read-only rootfs, privileged, unmasked /proc,
//     host PID and IPC namespaces, sysctls, and a pids limit of
//     Config.PidsLimit for containers that set none; host-network sandboxes
//     have no namespace or CNI attachment of their own;
//   - emptyDir volumes (emptydir.go): medium Memory is a tmpfs mounted on
//     the volume's directory the first time a container names it, recorded
//     in the sandbox record and unmounted by RemoveSandbox; a disk emptyDir
//     with a size limit is measured every Config.EmptyDirCheckInterval and
//     the pod's containers are killed (EmptyDirSizeLimitExceeded) when it
//     is passed; an fsGroup owns the directory.
//
// Logs: the shim starts a log driver process per container (Config.LogDriver,
// by default the running program, which calls LogDriverMain first in main)
// that appends stdout and stderr to ContainerConfig.LogPath; it lives as long
// as the container, so logs keep flowing while the agent restarts.
// containerd 1.6's own file logging (LogDriver "file", the fallback) can lose
// stderr written just before a process exits.
//
// Attach (attach.go, runtimes.Attacher): a container with Stdin gets a FIFO
// as its task's stdin, which the shim holds open itself until CloseIO, so
// stdin outlives the agent; StdinOnce is CloseIO on the first attachment's
// end. The runc shim copies no stdin for a binary:// log driver, so such a
// container without a terminal logs through the shim's file logging; one
// with TTY logs its terminal through the log driver (with LogDriver "file"
// TTY is refused).
//
// Exits are read from the containerd task; a non-zero exit of a container
// whose memory cgroup recorded an OOM kill (or for which containerd sent an
// OOM event) is reported as OOMKilled.
//
// Tests need root and a containerd: they use $KYB_CONTAINERD_ADDRESS (set by
// `source .ci/containerd.sh; kyb_containerd_start`), else
// /run/containerd/containerd.sock, and skip when it does not answer unless
// CI=true.
// Works on cgroup v1 and v2 with the cgroupfs layout containerd uses by
// default (/<namespace>/<container id>).
package containerd
