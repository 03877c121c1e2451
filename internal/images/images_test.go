package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

func TestRef(t *testing.T) {
	tests := []struct {
		name, tag, want, wantErr string
	}{
		{name: Proxy, tag: "test", want: "cr.l5d.io/linkerd-go/proxy:test"},
		{name: Controller, tag: "v1.2.3", want: "cr.l5d.io/linkerd-go/controller:v1.2.3"},
		{name: TestApp, tag: "dev", want: "cr.l5d.io/linkerd-go/testapp:dev"},
		{name: Demo, tag: "dev", want: "cr.l5d.io/linkerd-go/demo:dev"},
		{name: Pause, tag: "", want: PauseRef},
		{name: CoreDNS, tag: "ignored", want: CoreDNSRef},
		{name: Prometheus, tag: "v1", want: "cr.l5d.io/linkerd-go/prometheus:v1"},
		{name: Proxy, tag: "", wantErr: "no tag"},
		{name: Proxy, tag: "bad tag!", wantErr: "bad tag"},
		{name: "nginx", tag: "x", wantErr: "unknown image"},
	}
	for _, tt := range tests {
		t.Run(tt.name+":"+tt.tag, func(t *testing.T) {
			got, err := Ref(tt.name, tt.tag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Ref(%q, %q) = %q, %v; want error containing %q", tt.name, tt.tag, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Ref(%q, %q) = %q, %v; want %q", tt.name, tt.tag, got, err, tt.want)
			}
		})
	}
}

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name, out string
		want      []string
		wantErr   string
	}{
		{
			name: "dynamic",
			out: "\tlinux-vdso.so.1 (0x00007ffd)\n" +
				"\tlibxtables.so.12 => /lib/x86_64-linux-gnu/libxtables.so.12 (0x00007f41)\n" +
				"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f41)\n" +
				"\t/lib64/ld-linux-x86-64.so.2 (0x00007f41)\n",
			want: []string{"/lib/x86_64-linux-gnu/libxtables.so.12", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"},
		},
		{name: "static", out: "\tstatically linked\n", want: nil},
		{name: "not dynamic", out: "\tnot a dynamic executable\n", want: nil},
		{name: "missing", out: "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n", wantErr: "libfoo.so.1"},
		{name: "garbage", out: "what\n", wantErr: "no libraries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLdd(tt.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseLdd = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("parseLdd = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNetAdminCaps(t *testing.T) {
	// getcap prints this as "cap_net_admin,cap_net_raw=ep".
	want := "01000002" + "00300000" + "00000000" + "00000000" + "00000000"
	if got := hex.EncodeToString([]byte(netAdminCaps()["security.capability"])); got != want {
		t.Fatalf("security.capability = %s, want %s", got, want)
	}
}

type tarEntry struct {
	typ      byte
	mode     int64
	link     string
	data     string
	xattrCap bool
}

func readTar(t *testing.T, r io.Reader) ([]string, map[string]tarEntry) {
	t.Helper()
	tr := tar.NewReader(r)
	var order []string
	entries := map[string]tarEntry{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return order, entries
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", hdr.Name, hdr.ModTime, epoch)
		}
		_, hasCap := hdr.PAXRecords[paxXattr+"security.capability"]
		order = append(order, hdr.Name)
		entries[hdr.Name] = tarEntry{typ: hdr.Typeflag, mode: hdr.Mode, link: hdr.Linkname, data: string(data), xattrCap: hasCap}
	}
}

func TestLayerTar(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	layer, err := layerTar([]entry{
		{path: "/usr/sbin/tool", mode: 0o755, src: src, xattrs: netAdminCaps()},
		{path: "/usr/sbin/alias", mode: 0o777, link: "tool"},
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: "/etc/passwd", mode: 0o644, data: []byte("root\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	order, entries := readTar(t, bytes.NewReader(layer))
	wantOrder := []string{"etc/", "etc/passwd", "tmp/", "usr/", "usr/sbin/", "usr/sbin/alias", "usr/sbin/tool"}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("entries %q, want %q", order, wantOrder)
	}
	checks := map[string]tarEntry{
		"etc/":           {typ: tar.TypeDir, mode: 0o755},
		"etc/passwd":     {typ: tar.TypeReg, mode: 0o644, data: "root\n"},
		"tmp/":           {typ: tar.TypeDir, mode: 0o1777},
		"usr/sbin/alias": {typ: tar.TypeSymlink, mode: 0o777, link: "tool"},
		"usr/sbin/tool":  {typ: tar.TypeReg, mode: 0o755, data: "binary", xattrCap: true},
	}
	for p, want := range checks {
		if got := entries[p]; got != want {
			t.Errorf("%s: %+v, want %+v", p, got, want)
		}
	}

	again, err := layerTar([]entry{
		{path: "/etc/passwd", mode: 0o644, data: []byte("root\n")},
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: "/usr/sbin/alias", mode: 0o777, link: "tool"},
		{path: "/usr/sbin/tool", mode: 0o755, src: src, xattrs: netAdminCaps()},
	})
	if err != nil || !bytes.Equal(again, layer) {
		t.Errorf("same entries in another order gave a different layer (err %v)", err)
	}

	for _, bad := range [][]entry{
		{{path: "/a", data: nil}, {path: "/a/", data: nil}},
		{{path: "relative", data: nil}},
		{{path: "/", dir: true}},
	} {
		if _, err := layerTar(bad); err == nil {
			t.Errorf("layerTar(%+v) succeeded, want an error", bad)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no out dir", Options{Tag: "t", Names: []string{Pause}}, "no output directory"},
		{"unknown", Options{Tag: "t", OutDir: t.TempDir(), Names: []string{"nginx"}}, "unknown image"},
		{"twice", Options{OutDir: t.TempDir(), Names: []string{Pause, Pause}}, "twice"},
		{"no tag", Options{OutDir: t.TempDir(), Names: []string{Proxy}}, "no tag"},
		{"coredns without binary", Options{OutDir: t.TempDir(), Names: []string{CoreDNS}}, "CoreDNS binary"},
		{"coredns missing binary", Options{OutDir: t.TempDir(), Names: []string{CoreDNS}, CoreDNSBinary: "/nonexistent/coredns"}, "hack/build-k8s.sh"},
		{"prometheus without binary", Options{Tag: "t", OutDir: t.TempDir(), Names: []string{Prometheus}}, "Prometheus binary"},
		{"prometheus missing binary", Options{Tag: "t", OutDir: t.TempDir(), Names: []string{Prometheus}, PrometheusBinary: "/nonexistent/prometheus"}, "hack/build-k8s.sh"},
		{"prometheus not a binary", Options{Tag: "t", OutDir: t.TempDir(), Names: []string{Prometheus}, PrometheusBinary: notELF(t)}, "not an executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(ctx, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Build: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// notELF returns an executable file that is not a program.
func notELF(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prometheus")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostBinaryFiles wraps a dynamically linked program of this machine:
// the image gets it at the given path, with its loader and libraries.
func TestHostBinaryFiles(t *testing.T) {
	testnet.Require(t, "ldd")
	bin, err := exec.LookPath("true")
	if err != nil {
		testkit.SkipOrFail(t, "no true command")
	}
	dynamic, err := isDynamic(bin)
	if err != nil {
		t.Fatal(err)
	}
	files, err := hostBinaryFiles(bin, PrometheusBinPath)
	if err != nil {
		t.Fatal(err)
	}
	if files[0].path != PrometheusBinPath || files[0].src != bin || files[0].mode != 0o755 {
		t.Errorf("first entry %+v, want %s from %s", files[0], PrometheusBinPath, bin)
	}
	var libc bool
	for _, f := range files[1:] {
		if strings.Contains(filepath.Base(f.path), "libc.so") && f.path == f.src {
			libc = true
		}
	}
	if dynamic != libc {
		t.Errorf("dynamic=%t but libc in the entries=%t: %+v", dynamic, libc, files)
	}
	if _, err := hostBinaryFiles("/nonexistent", PrometheusBinPath); err == nil {
		t.Error("a missing binary gave no error")
	}
}

// TestBuild builds the pause image (one small go build) and a CoreDNS
// image around a stand-in binary, reads them back, and rebuilds them from
// the cache.
func TestBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testkit.SkipOrFail(t, "no go command to build the binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	fakeCoreDNS := filepath.Join(t.TempDir(), "coredns")
	if err := os.WriteFile(fakeCoreDNS, []byte("not really coredns"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{OutDir: dir, Names: []string{Pause, CoreDNS}, CoreDNSBinary: fakeCoreDNS}
	built, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 2 || built[0].Name != Pause || built[1].Name != CoreDNS {
		t.Fatalf("built %+v, want pause then coredns", built)
	}
	for _, img := range built {
		if img.Cached {
			t.Errorf("%s: cached on the first build", img.Name)
		}
		tag, err := name.NewTag(img.Ref)
		if err != nil {
			t.Fatal(err)
		}
		vimg, err := tarball.ImageFromPath(img.Path, &tag)
		if err != nil {
			t.Fatalf("%s: reading %s back: %v", img.Name, img.Path, err)
		}
		digest, err := vimg.Digest()
		if err != nil || digest.String() != img.Digest {
			t.Errorf("%s: digest %v (%v), Build said %s", img.Name, digest, err, img.Digest)
		}
		cf, err := vimg.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		wantEntry := map[string]string{Pause: PauseBinPath, CoreDNS: CoreDNSBinPath}[img.Name]
		if !slices.Equal(cf.Config.Entrypoint, []string{wantEntry}) || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
			t.Errorf("%s: entrypoint %q on %s/%s, want [%s] on linux/%s", img.Name, cf.Config.Entrypoint, cf.OS, cf.Architecture, wantEntry, runtime.GOARCH)
		}
		layers, err := vimg.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: %d layers (%v), want 1", img.Name, len(layers), err)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		_, entries := readTar(t, rc)
		rc.Close()
		bin := entries[strings.TrimPrefix(wantEntry, "/")]
		if bin.typ != tar.TypeReg || bin.mode != 0o755 || len(bin.data) == 0 {
			t.Errorf("%s: entrypoint in the layer: %+v", img.Name, bin)
		}
		if e := entries["etc/passwd"]; !strings.Contains(e.data, "nobody:x:65534") {
			t.Errorf("%s: /etc/passwd %q lacks nobody", img.Name, e.data)
		}
	}

	again, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range again {
		if !img.Cached || img.Digest != built[i].Digest {
			t.Errorf("%s rebuilt: cached=%t digest %s, first %s", img.Name, img.Cached, img.Digest, built[i].Digest)
		}
	}
}

// TestIPTablesFiles checks that the proxy image's iptables-legacy is
// complete: extracted alone into a directory, it lists the nat table of a
// fresh network namespace under chroot.
func TestIPTablesFiles(t *testing.T) {
	testnet.Require(t, "unshare", "chroot", "ldd", legacyMulti)
	files, err := iptablesFiles()
	if err != nil {
		t.Fatal(err)
	}
	var multi *entry
	for i, f := range files {
		if f.path == imageSbin+"/"+legacyMulti {
			multi = &files[i]
		}
	}
	if multi == nil || multi.xattrs["security.capability"] == "" {
		t.Fatalf("no %s with file capabilities among %d files", legacyMulti, len(files))
	}
	// The base files give iptables its /run for the lock.
	layer, err := layerTar(append(append(files, baseFiles()...), entry{path: k8s.ProxyInitBinPath, mode: 0o755, data: []byte("x")}))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(hdr.Mode).Perm())
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		default:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, data, os.FileMode(hdr.Mode).Perm())
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []string{"iptables-legacy", "ip6tables-legacy"} {
		out, err := exec.CommandContext(ctx, "unshare", "--net", "chroot", root, imageSbin+"/"+c, "-t", "nat", "-S").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-P OUTPUT ACCEPT") {
			t.Errorf("%s in the image: %v\n%s", c, err, out)
		}
	}
}
