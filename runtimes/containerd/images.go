package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kybernetes/kybernetes/runtimes"
)

// normalizeRef turns what a pod names ("busybox", "127.0.0.1:5000/app:v1")
// into the full reference containerd stores ("docker.io/library/busybox:latest").
func normalizeRef(ref string) (string, error) {
	if strings.TrimSpace(ref) == "" {
		return "", runtimes.WithReason(runtimes.ReasonInvalidImageName, false, errors.New("image reference is empty"))
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", runtimes.WithReason(runtimes.ReasonInvalidImageName, false, fmt.Errorf("image reference %q: %w", ref, err))
	}
	return named.String(), nil
}

func (r *Runtime) plainHTTP(host string) (bool, error) {
	if ok, _ := docker.MatchLocalhost(host); ok {
		return true, nil
	}
	for _, h := range r.cfg.InsecureRegistries {
		if strings.EqualFold(h, host) {
			return true, nil
		}
	}
	return false, nil
}

// resolver resolves and fetches from registries, authenticating with the
// login among auth for each registry host (none when auth has none).
func (r *Runtime) resolver(auth []runtimes.RegistryAuth) remotes.Resolver {
	opts := []docker.RegistryOpt{docker.WithPlainHTTP(r.plainHTTP)}
	if len(auth) > 0 {
		opts = append(opts, docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(host string) (string, string, error) {
			if a, ok := runtimes.AuthFor(auth, host); ok {
				return a.Username, a.Password, nil
			}
			return "", "", nil
		}))))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(opts...)})
}

func toImage(ctx context.Context, ref string, img cclient.Image) *runtimes.Image {
	size, _ := img.Size(ctx)
	if ref == "" {
		ref = img.Name()
	}
	return &runtimes.Image{Ref: ref, Digest: img.Target().Digest.String(), Size: size}
}

// EnsureImage makes the image present and unpacked according to policy.
// A reference that does not parse fails with reason InvalidImageName (not
// retryable); a pull that fails (unknown image, registry unreachable) fails
// with reason ErrImagePull (retryable); PullNever with an absent image fails
// with ErrImageNeverPull wrapping runtimes.ErrNotFound. progress, if not
// nil, is called from the pulling goroutine and a ticker while it runs.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy runtimes.PullPolicy, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	return r.EnsureImageWithAuth(ctx, ref, policy, nil, progress)
}

// EnsureImageWithAuth implements runtimes.AuthPuller: EnsureImage, with a
// pull that logs in to the image's registry with the matching login of
// auth (a pod's imagePullSecrets).
func (r *Runtime) EnsureImageWithAuth(ctx context.Context, ref string, policy runtimes.PullPolicy, auth []runtimes.RegistryAuth, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	ctx = r.ns(ctx)
	name, err := normalizeRef(ref)
	if err != nil {
		return nil, fmt.Errorf("ensure image: %w", err)
	}
	snap, err := r.snapshotterName(ctx)
	if err != nil {
		return nil, fmt.Errorf("ensure image %s: %w", ref, err)
	}
	if policy != runtimes.PullAlways {
		img, err := r.client.GetImage(ctx, name)
		switch {
		case err == nil:
			if err := ensureUnpacked(ctx, img, snap); err != nil {
				return nil, fmt.Errorf("ensure image %s: %w", ref, err)
			}
			return toImage(ctx, ref, img), nil
		case !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("ensure image %s: %w", ref, mapErr(err))
		case policy == runtimes.PullNever:
			return nil, runtimes.WithReason(runtimes.ReasonErrImageNeverPull, true,
				runtimes.NotFoundf("image %s is not present and the pull policy is Never", ref))
		}
	}
	img, err := r.pull(ctx, name, snap, auth, progress)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("pull image %s: %w", ref, err)
		}
		return nil, runtimes.WithReason(runtimes.ReasonErrImagePull, true, fmt.Errorf("pull image %s: %w", ref, err))
	}
	r.log.Info("image pulled", "image", ref, "digest", img.Target().Digest.String())
	return toImage(ctx, ref, img), nil
}

func ensureUnpacked(ctx context.Context, img cclient.Image, snap string) error {
	ok, err := img.IsUnpacked(ctx, snap)
	if err != nil {
		return fmt.Errorf("check unpacked: %w", mapErr(err))
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, snap); err != nil {
		return fmt.Errorf("unpack into %s: %w", snap, mapErr(err))
	}
	return nil
}

// pullTracker turns the descriptors a pull walks and the content store's
// active ingests into PullProgress reports.
type pullTracker struct {
	ref string
	fn  func(runtimes.PullProgress)

	mu     sync.Mutex
	layers map[string]int64 // digest -> size
	done   map[string]bool
}

// wrap records the layers among the children of the descriptors the pull
// walks (the unpacker fetches layers itself, so they never reach a plain
// image handler).
func (t *pullTracker) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		t.mu.Lock()
		for _, c := range children {
			if images.IsLayerType(c.MediaType) {
				t.layers[c.Digest.String()] = c.Size
			}
		}
		t.mu.Unlock()
		return children, err
	})
}

func (t *pullTracker) report(ctx context.Context, r *Runtime, final bool) {
	var statuses map[string]int64
	if !final {
		if st, err := r.client.ContentStore().ListStatuses(ctx); err == nil {
			statuses = make(map[string]int64, len(st))
			for _, s := range st {
				statuses[s.Expected.String()] = s.Offset
			}
		}
	}
	t.mu.Lock()
	p := runtimes.PullProgress{Ref: t.ref, Layers: len(t.layers)}
	for d, size := range t.layers {
		p.Total += size
		if !t.done[d] && !final {
			if _, err := r.client.ContentStore().Info(ctx, digest.Digest(d)); err == nil {
				t.done[d] = true
			}
		}
		switch {
		case final || t.done[d]:
			p.Done += size
			p.LayersDone++
		default:
			p.Done += statuses[d]
		}
	}
	t.mu.Unlock()
	t.fn(p)
}

func (r *Runtime) pull(ctx context.Context, name, snap string, auth []runtimes.RegistryAuth, progress func(runtimes.PullProgress)) (cclient.Image, error) {
	opts := []cclient.RemoteOpt{
		cclient.WithPullUnpack,
		cclient.WithPullSnapshotter(snap),
		cclient.WithResolver(r.resolver(auth)),
	}
	var stop func()
	var tracker *pullTracker
	if progress != nil {
		tracker = &pullTracker{ref: name, fn: progress, layers: map[string]int64{}, done: map[string]bool{}}
		opts = append(opts, cclient.WithImageHandlerWrapper(tracker.wrap))
		tctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tctx.Done():
					return
				case <-tick.C:
					tracker.report(tctx, r, false)
				}
			}
		}()
		stop = func() { cancel(); wg.Wait() }
	}
	img, err := r.client.Pull(ctx, name, opts...)
	if stop != nil {
		stop()
	}
	if err != nil {
		if errdefs.IsUnavailable(err) {
			return nil, mapErr(err)
		}
		return nil, err
	}
	if tracker != nil {
		tracker.report(ctx, r, true)
	}
	return img, nil
}

// ListImages returns the images present in the runtime's namespace, by
// their stored (normalized) names.
func (r *Runtime) ListImages(ctx context.Context) ([]*runtimes.Image, error) {
	ctx = r.ns(ctx)
	imgs, err := r.client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", mapErr(err))
	}
	out := make([]*runtimes.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, toImage(ctx, "", img))
	}
	return out, nil
}

// ImportImage loads the images of an OCI or docker archive (as written by
// `docker save` or go-containerregistry's tarball package) and unpacks them.
// Images without a name in the archive are stored under their digest.
func (r *Runtime) ImportImage(ctx context.Context, path string) ([]*runtimes.Image, error) {
	ctx = r.ns(ctx)
	snap, err := r.snapshotterName(ctx)
	if err != nil {
		return nil, fmt.Errorf("import image %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	defer f.Close()
	ctx, done, err := r.client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("import image %s: %w", path, mapErr(err))
	}
	defer done(context.WithoutCancel(ctx))
	imgs, err := r.client.Import(ctx, f, cclient.WithDigestRef(func(d digest.Digest) string { return "import@" + d.String() }),
		cclient.WithSkipDigestRef(func(name string) bool { return name != "" }))
	if err != nil {
		return nil, fmt.Errorf("import image %s: %w", path, mapErr(err))
	}
	out := make([]*runtimes.Image, 0, len(imgs))
	for _, i := range imgs {
		img := cclient.NewImage(r.client, i)
		if err := ensureUnpacked(ctx, img, snap); err != nil {
			return nil, fmt.Errorf("import image %s: %s: %w", path, i.Name, err)
		}
		out = append(out, toImage(ctx, "", img))
	}
	r.log.Info("images imported", "archive", path, "count", len(out))
	return out, nil
}
