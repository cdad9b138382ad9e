package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// remoteSpec is [NAMESPACE/]POD:PATH of kyb cp.
type remoteSpec struct{ ns, pod, path string }

// parseCpSpec reads a kyb cp argument: remote when it has a colon before
// any slash-free pod name (kubectl's rule), else a local path.
func parseCpSpec(arg string) (*remoteSpec, error) {
	pod, p, ok := strings.Cut(arg, ":")
	if !ok || pod == "" || strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return nil, nil
	}
	r := &remoteSpec{pod: pod, path: p}
	if ns, name, ok := strings.Cut(pod, "/"); ok {
		r.ns, r.pod = ns, name
	}
	if r.path == "" || !path.IsAbs(r.path) {
		return nil, fmt.Errorf("cp: %q: the pod's path must be absolute", arg)
	}
	return r, nil
}

func newCpCmd(g *globals) *cobra.Command {
	var ns, container string
	cmd := &cobra.Command{
		Use:   "cp SRC DEST (one of them [NAMESPACE/]POD:/PATH)",
		Short: "Copy files and directories to and from a container (tar over exec, as kubectl; the image needs tar)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseCpSpec(args[0])
			if err != nil {
				return err
			}
			dst, err := parseCpSpec(args[1])
			if err != nil {
				return err
			}
			if (src == nil) == (dst == nil) {
				return fmt.Errorf("cp: exactly one of SRC and DEST must be POD:/PATH")
			}
			c, nc, err := g.connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			remote := src
			if remote == nil {
				remote = dst
			}
			if remote.ns == "" {
				remote.ns = orDefault("", ns, podKind())
			}
			if src != nil {
				return copyFromPod(cmd.Context(), c, src, container, args[1], g.streams.Err)
			}
			return copyToPod(cmd.Context(), c, args[0], dst, container)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&container, "container", "c", "", "container (default: the pod's only one)")
	return cmd
}

// copyFromPod runs `tar cf - PATH` in the container and unpacks it as
// local.
func copyFromPod(ctx context.Context, c *client.Client, r *remoteSpec, container, local string, warn io.Writer) error {
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		code, err := c.Exec(ctx, api.SessionExec, api.ExecRequest{Namespace: r.ns, Pod: r.pod, Container: container,
			Command: []string{"tar", "cf", "-", r.path}}, client.ExecIO{Stdout: pw, Stderr: &stderr})
		if err == nil && code != 0 {
			err = fmt.Errorf("tar in %s exited with %d: %s", r.pod, code, strings.TrimSpace(stderr.String()))
		}
		pw.CloseWithError(err)
		done <- err
	}()
	err := extractTar(pr, path.Base(r.path), local, warn)
	pr.CloseWithError(errors.New("cp: stopped reading"))
	rerr := <-done
	if rerr != nil && (err == nil || strings.Contains(err.Error(), "nothing copied")) {
		return fmt.Errorf("cp %s:%s: %w", r.pod, r.path, rerr)
	}
	return err // a refused archive says why, before the tar it cut short
}

// extractTar writes the entries beneath prefix (the remote path's base
// name) as local: prefix itself is local, prefix/x is local/x. An entry
// that would land outside local (absolute, "..", another prefix) is an
// error, as are links (a hostile container must not write anywhere else).
func extractTar(r io.Reader, prefix, local string, warn io.Writer) error {
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("cp: read archive: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if path.IsAbs(name) || name != path.Clean(name) || strings.Contains("/"+name+"/", "/../") {
			return fmt.Errorf("cp: refusing archive entry %q: outside the copied path", h.Name)
		}
		rel, ok := strings.CutPrefix(name, prefix)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			return fmt.Errorf("cp: refusing archive entry %q: not beneath %q", h.Name, prefix)
		}
		dest := filepath.Join(local, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dest, 0o755); err != nil {
				return fmt.Errorf("cp: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				return fmt.Errorf("cp: %w", err)
			}
			f, err := os.OpenFile(dest, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode)&0o777)
			if err != nil {
				return fmt.Errorf("cp: %w", err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("cp: write %s: %w", dest, err)
			}
		default:
			fmt.Fprintf(warn, "cp: skipping %q: only files and directories are copied\n", h.Name)
			continue
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("cp: nothing copied (no such file in the container?)")
	}
	return nil
}

// copyToPod packs local as the remote path's base name and unpacks it
// with `tar xf - -C DIR` in the container.
func copyToPod(ctx context.Context, c *client.Client, local string, r *remoteSpec, container string) error {
	if _, err := os.Stat(local); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarLocal(pw, local, path.Base(r.path))) }()
	var stderr bytes.Buffer
	code, err := c.Exec(ctx, api.SessionExec, api.ExecRequest{Namespace: r.ns, Pod: r.pod, Container: container,
		Command: []string{"tar", "xf", "-", "-C", path.Dir(r.path)}}, client.ExecIO{Stdin: pr, Stderr: &stderr})
	pr.Close()
	if err == nil && code != 0 {
		err = fmt.Errorf("tar in %s exited with %d: %s", r.pod, code, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return fmt.Errorf("cp to %s:%s: %w", r.pod, r.path, err)
	}
	return nil
}

// tarLocal writes local (a file or a directory tree) as an archive whose
// root is named name.
func tarLocal(w io.Writer, local, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(local, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil // links and devices are not copied
		}
		rel, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = path.Join(name, filepath.ToSlash(rel))
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
