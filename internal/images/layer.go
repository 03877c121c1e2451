package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one file, directory or symlink of an image.
type entry struct {
	path string // absolute, inside the image
	mode int64  // permission bits (and sticky)
	dir  bool
	link string // symlink target, when not empty
	src  string // file on the host to copy; else data
	data []byte
	// xattrs are extended attributes, e.g. security.capability.
	xattrs map[string]string
}

// paxXattr prefixes the PAX records holding extended attributes.
const paxXattr = "SCHILY.xattr."

// epoch is every entry's modification time and the image's creation time.
var epoch = time.Unix(0, 0).UTC()

// layerTar returns the layer: entries sorted by path, parent directories
// added (0755) where missing. Two entries with the same path are an error.
func layerTar(entries []entry) ([]byte, error) {
	byPath := make(map[string]entry, len(entries))
	for _, e := range entries {
		p := path.Clean(e.path)
		if !path.IsAbs(p) || p == "/" {
			return nil, fmt.Errorf("bad path %q in image", e.path)
		}
		e.path = strings.TrimPrefix(p, "/")
		if _, dup := byPath[e.path]; dup {
			return nil, fmt.Errorf("%s twice in image", p)
		}
		byPath[e.path] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = entry{path: d, mode: 0o755, dir: true}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	// Sorted paths put every directory before what it holds.
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := byPath[p]
		hdr := &tar.Header{Name: p, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords[paxXattr+k] = v
			}
		}
		var data []byte
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			data = e.data
			if e.src != "" {
				var err error
				if data, err = os.ReadFile(e.src); err != nil {
					return nil, err
				}
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), nil
}

// image assembles the single-layer image.
func (sp *imageSpec) image() (v1.Image, error) {
	layerBytes, err := layerTar(sp.files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = sp.entrypoint
	cf.Config.Env = sp.env
	cf.Config.WorkingDir = "/"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// write writes the image to dst (a docker-archive tarball) unless dst
// already holds it: dst+".key" records the inputs of the last write.
func (sp *imageSpec) write(dst string) (Image, error) {
	img := Image{Ref: sp.ref, Path: dst}
	key, err := sp.inputKey()
	if err != nil {
		return img, err
	}
	// Serialise writers of dst (other test binaries building the same
	// image), so that the key file always describes the tarball.
	lock, err := os.OpenFile(dst+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return img, err
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return img, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	keyFile := dst + ".key"
	if b, err := os.ReadFile(keyFile); err == nil {
		if k, digest, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok && k == key {
			if _, err := os.Stat(dst); err == nil {
				img.Digest, img.Cached = digest, true
				return img, nil
			}
		}
	}

	ref, err := name.NewTag(sp.ref, name.StrictValidation)
	if err != nil {
		return img, fmt.Errorf("reference %q: %w", sp.ref, err)
	}
	vimg, err := sp.image()
	if err != nil {
		return img, err
	}
	digest, err := vimg.Digest()
	if err != nil {
		return img, fmt.Errorf("digest: %w", err)
	}
	img.Digest = digest.String()

	// Write beside dst and rename, so that concurrent builders and readers
	// only ever see complete tarballs.
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return img, err
	}
	defer os.Remove(tmp.Name())
	werr := tarball.Write(ref, vimg, tmp)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return img, fmt.Errorf("writing %s: %w", dst, werr)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return img, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return img, err
	}
	if err := os.WriteFile(keyFile, []byte(key+" "+img.Digest+"\n"), 0o644); err != nil {
		return img, errors.Join(fmt.Errorf("recording the inputs of %s", dst), err)
	}
	return img, nil
}
