// Package images builds container images from this module's Go binaries,
// without Docker or a registry: each image is one layer written with
// go-containerregistry into a docker-archive tarball, ready for
// `ctr -n k8s.io images import` (test/cluster's Node.LoadImages does that).
//
// The images:
//
//	proxy       cr.l5d.io/linkerd-go/proxy:TAG        the proxy (entrypoint), linkerd-init,
//	                                                  linkerd-await (paths in pkg/k8s) and the
//	                                                  host's iptables-legacy with its libraries
//	controller  cr.l5d.io/linkerd-go/controller:TAG   linkerd-controller (entrypoint)
//	testapp     cr.l5d.io/linkerd-go/testapp:TAG      test/testapp (entrypoint) and test/fetch
//	demo        cr.l5d.io/linkerd-go/demo:TAG         linkerd-demo (entrypoint) and test/fetch
//	pause       registry.k8s.io/pause:3.10.1          test/pause, the pod sandbox image
//	coredns     registry.k8s.io/coredns/coredns:v1.14.7  a CoreDNS binary built by hack/build-k8s.sh
//	prometheus  cr.l5d.io/linkerd-go/prometheus:TAG   a Prometheus binary (entrypoint) with the
//	                                                  Kubernetes service discovery, built by
//	                                                  hack/build-k8s.sh, and its libraries if dynamic
//
// Go binaries are built static (CGO_ENABLED=0, -trimpath) for the host's
// architecture, with pkg/version.Version stamped. Every file has the
// modification time 0 and entries are sorted, so the same inputs give the
// same image digest; Build skips writing a tarball whose inputs are
// unchanged.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// Image names accepted by Options.Names.
const (
	Proxy      = "proxy"
	Controller = "controller"
	TestApp    = "testapp"
	Demo       = "demo"
	Pause      = "pause"
	CoreDNS    = "coredns"
	Prometheus = "prometheus"
)

// All lists every image Build knows, in build order.
var All = []string{Proxy, Controller, TestApp, Demo, Pause, CoreDNS, Prometheus}

// Repositories and fixed references of the images that are not in pkg/k8s.
const (
	// TestAppImageName is the test application's repository.
	TestAppImageName = k8s.ImageRegistry + "/testapp"
	// DemoImageName is the demo application's repository.
	DemoImageName = k8s.ImageRegistry + "/demo"
	// PrometheusImageName is the repository of the linkerd-viz chart's
	// Prometheus (its prometheus.image.name).
	PrometheusImageName = k8s.ImageRegistry + "/prometheus"
	// PauseRef is the sandbox image; the test node's containerd is
	// configured with it (sandbox_image).
	PauseRef = "registry.k8s.io/pause:3.10.1"
	// CoreDNSVersion is the CoreDNS release hack/build-k8s.sh builds.
	CoreDNSVersion = "v1.14.7"
	// CoreDNSRef is the CoreDNS image the test node runs.
	CoreDNSRef = "registry.k8s.io/coredns/coredns:" + CoreDNSVersion
)

// Paths of the binaries in the images that are not in pkg/k8s.
const (
	TestAppBinPath = "/usr/local/bin/testapp"
	FetchBinPath   = "/usr/local/bin/fetch"
	DemoBinPath    = "/usr/local/bin/linkerd-demo"
	PauseBinPath   = "/pause"
	CoreDNSBinPath = "/coredns"
	// PrometheusBinPath is Prometheus in its image; the chart passes every
	// path it uses (--config.file, --storage.tsdb.path) explicitly.
	PrometheusBinPath = "/bin/prometheus"
)

// imagePATH is the PATH of every image: the linkerd binaries, then the
// usual directories.
const imagePATH = "PATH=/usr/lib/linkerd:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options says what to build.
type Options struct {
	// Tag is the tag of the project's images (proxy, controller, testapp,
	// demo), e.g. "test". Required when one of them is built.
	Tag string
	// Version is stamped into the binaries (pkg/version.Version);
	// defaults to Tag.
	Version string
	// OutDir receives one tarball per image, NAME.tar. Required.
	OutDir string
	// Names are the images to build (see All); empty means All.
	Names []string
	// CoreDNSBinary is the CoreDNS binary to wrap; required for CoreDNS.
	CoreDNSBinary string
	// PrometheusBinary is the Prometheus binary to wrap; required for
	// Prometheus. It must support kubernetes_sd_configs (Debian's does not).
	PrometheusBinary string
	// ModuleRoot is this module's directory; empty means the nearest
	// directory holding go.mod above the working directory.
	ModuleRoot string
	// Logger, if set, gets a line per image.
	Logger *slog.Logger
}

// Image is a built image tarball.
type Image struct {
	Name   string // one of All
	Ref    string // e.g. cr.l5d.io/linkerd-go/proxy:test
	Path   string // the docker-archive tarball
	Digest string // the image's manifest digest, sha256:...
	// Cached reports that the tarball was already up to date.
	Cached bool
}

// Ref returns the reference the image called name gets with tag, which is
// ignored for the images with a fixed reference (pause, coredns).
func Ref(imageName, tag string) (string, error) {
	var repo string
	switch imageName {
	case Proxy:
		repo = k8s.ProxyImageName
	case Controller:
		repo = k8s.ControllerImageName
	case TestApp:
		repo = TestAppImageName
	case Demo:
		repo = DemoImageName
	case Prometheus:
		repo = PrometheusImageName
	case Pause:
		return PauseRef, nil
	case CoreDNS:
		return CoreDNSRef, nil
	default:
		return "", fmt.Errorf("unknown image %q (known: %s)", imageName, strings.Join(All, ", "))
	}
	if tag == "" {
		return "", fmt.Errorf("image %s: no tag given", imageName)
	}
	ref := repo + ":" + tag
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		return "", fmt.Errorf("image %s: bad tag %q: %w", imageName, tag, err)
	}
	return ref, nil
}

// goPackages are the main packages each image needs, relative to the
// module root; their binaries are named after the last path element.
var goPackages = map[string][]string{
	Proxy:      {"./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-await"},
	Controller: {"./cmd/linkerd-controller"},
	TestApp:    {"./test/testapp", "./test/fetch"},
	Demo:       {"./cmd/linkerd-demo", "./test/fetch"},
	Pause:      {"./test/pause"},
}

// Build builds the images opts names and returns them in the order of
// opts.Names (or All).
func Build(ctx context.Context, opts Options) ([]Image, error) {
	names := opts.Names
	if len(names) == 0 {
		names = All
	}
	if opts.OutDir == "" {
		return nil, errors.New("images: no output directory")
	}
	refs := make(map[string]string, len(names))
	var pkgs []string
	for _, n := range names {
		if _, dup := refs[n]; dup {
			return nil, fmt.Errorf("images: %s listed twice", n)
		}
		ref, err := Ref(n, opts.Tag)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		refs[n] = ref
		for _, p := range goPackages[n] {
			if !slices.Contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
		if n == CoreDNS && opts.CoreDNSBinary == "" {
			return nil, errors.New("images: coredns needs a CoreDNS binary (Options.CoreDNSBinary; hack/build-k8s.sh builds one)")
		}
		if n == Prometheus && opts.PrometheusBinary == "" {
			return nil, errors.New("images: prometheus needs a Prometheus binary (Options.PrometheusBinary; hack/build-k8s.sh builds one)")
		}
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}

	var bins map[string]string
	if len(pkgs) > 0 {
		root := opts.ModuleRoot
		if root == "" {
			var err error
			if root, err = moduleRoot(); err != nil {
				return nil, fmt.Errorf("images: %w", err)
			}
		}
		binDir, err := os.MkdirTemp(opts.OutDir, ".bin-")
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		defer os.RemoveAll(binDir)
		version := opts.Version
		if version == "" {
			version = opts.Tag
		}
		if bins, err = goBuild(ctx, root, binDir, version, pkgs); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
	}

	out := make([]Image, 0, len(names))
	for _, n := range names {
		sp, err := spec(n, refs[n], bins, opts)
		if err != nil {
			return nil, fmt.Errorf("images: %s: %w", n, err)
		}
		img, err := sp.write(filepath.Join(opts.OutDir, n+".tar"))
		if err != nil {
			return nil, fmt.Errorf("images: %s: %w", n, err)
		}
		img.Name = n
		if opts.Logger != nil {
			opts.Logger.Info("image", "name", n, "ref", img.Ref, "path", img.Path, "digest", img.Digest, "cached", img.Cached)
		}
		out = append(out, img)
	}
	return out, nil
}

// imageSpec is the content and configuration of one image.
type imageSpec struct {
	ref        string
	entrypoint []string
	env        []string
	files      []entry
}

// spec returns what goes into the image called imageName.
func spec(imageName, ref string, bins map[string]string, opts Options) (*imageSpec, error) {
	sp := &imageSpec{ref: ref, env: []string{imagePATH}, files: baseFiles()}
	bin := func(path, binary string) {
		sp.files = append(sp.files, entry{path: path, mode: 0o755, src: bins[binary]})
	}
	switch imageName {
	case Proxy:
		bin(k8s.ProxyBinPath, "linkerd-proxy")
		bin(k8s.ProxyInitBinPath, "linkerd-init")
		// linkerd-init may run as a non-root user with NET_ADMIN and
		// NET_RAW in its bounding set (and no_new_privs): file capabilities
		// on it and on iptables keep those two across its execs.
		sp.files[len(sp.files)-1].xattrs = netAdminCaps()
		bin(k8s.AwaitBinPath, "linkerd-await")
		ipt, err := iptablesFiles()
		if err != nil {
			return nil, err
		}
		sp.files = append(sp.files, ipt...)
		sp.entrypoint = []string{k8s.ProxyBinPath}
	case Controller:
		bin(k8s.ControllerBinPath, "linkerd-controller")
		sp.entrypoint = []string{k8s.ControllerBinPath}
	case TestApp:
		bin(TestAppBinPath, "testapp")
		bin(FetchBinPath, "fetch")
		sp.entrypoint = []string{TestAppBinPath}
	case Demo:
		bin(DemoBinPath, "linkerd-demo")
		bin(FetchBinPath, "fetch")
		sp.entrypoint = []string{DemoBinPath}
	case Pause:
		bin(PauseBinPath, "pause")
		sp.entrypoint = []string{PauseBinPath}
	case CoreDNS:
		if _, err := os.Stat(opts.CoreDNSBinary); err != nil {
			return nil, fmt.Errorf("CoreDNS binary: %w (hack/build-k8s.sh builds it)", err)
		}
		sp.files = append(sp.files, entry{path: CoreDNSBinPath, mode: 0o755, src: opts.CoreDNSBinary})
		sp.entrypoint = []string{CoreDNSBinPath}
	case Prometheus:
		files, err := hostBinaryFiles(opts.PrometheusBinary, PrometheusBinPath)
		if err != nil {
			return nil, fmt.Errorf("prometheus binary: %w (hack/build-k8s.sh builds one)", err)
		}
		sp.files = append(sp.files, files...)
		sp.entrypoint = []string{PrometheusBinPath}
	default:
		return nil, fmt.Errorf("unknown image %q", imageName)
	}
	return sp, nil
}

// baseFiles are in every image: users root and nobody, and world-writable
// /tmp and /run (iptables takes its lock in /run, also as a non-root user
// with NET_ADMIN).
func baseFiles() []entry {
	return []entry{
		{path: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")},
		{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{path: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: "/run", mode: 0o1777, dir: true},
		{path: "/root", mode: 0o700, dir: true},
	}
}

// inputKey hashes everything that determines the image, so that an
// unchanged image is not rewritten.
func (sp *imageSpec) inputKey() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format 1\nref %q\nentrypoint %q\nenv %q\narch %s\n", sp.ref, sp.entrypoint, sp.env, runtime.GOARCH)
	for _, e := range sp.files {
		xattrs := make([]string, 0, len(e.xattrs))
		for k, v := range e.xattrs {
			xattrs = append(xattrs, k+"="+v)
		}
		slices.Sort(xattrs)
		fmt.Fprintf(h, "%q %o %t %q %q ", e.path, e.mode, e.dir, e.link, xattrs)
		if e.dir || e.link != "" {
			fmt.Fprintln(h)
			continue
		}
		sum, err := e.contentHash()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (e *entry) contentHash() (string, error) {
	h := sha256.New()
	if e.src == "" {
		h.Write(e.data)
	} else {
		f, err := os.Open(e.src)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("reading %s: %w", e.src, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
