package images

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The proxy image carries the host's iptables-legacy for linkerd-init:
// xtables-legacy-multi, the command names linking to it (linkerd-init finds
// iptables-legacy on PATH, or is told --firewall-bin-path=iptables-legacy),
// its match and target extensions, and every shared library they load,
// with the dynamic loader, at the paths the host has them.

// legacyMulti is the multi-call binary behind every *-legacy command.
const legacyMulti = "xtables-legacy-multi"

// legacyCommands link to legacyMulti in the image's /usr/sbin.
var legacyCommands = []string{
	"iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore",
	"ip6tables-legacy", "ip6tables-legacy-save", "ip6tables-legacy-restore",
}

// imageSbin is where the iptables commands go in the image.
const imageSbin = "/usr/sbin"

// extensionDirs are where distributions keep the xtables extensions,
// searched in order; libxtables has its directory compiled in, so the image
// uses the host's path.
var extensionDirs = []string{"/usr/lib/*/xtables", "/usr/lib64/xtables", "/usr/lib/xtables", "/lib/*/xtables"}

// iptablesFiles returns the image entries for iptables-legacy.
func iptablesFiles() ([]entry, error) {
	multi, err := findLegacyMulti()
	if err != nil {
		return nil, err
	}
	exts, err := xtablesExtensions()
	if err != nil {
		return nil, err
	}
	libs, err := sharedLibraries(append([]string{multi}, exts...))
	if err != nil {
		return nil, err
	}
	files := []entry{{path: imageSbin + "/" + legacyMulti, mode: 0o755, src: multi, xattrs: netAdminCaps()}}
	for _, c := range legacyCommands {
		files = append(files, entry{path: imageSbin + "/" + c, mode: 0o777, link: legacyMulti})
	}
	for _, e := range exts {
		files = append(files, entry{path: e, mode: 0o644, src: e})
	}
	for _, l := range libs {
		files = append(files, entry{path: l, mode: 0o755, src: l})
	}
	// Protocol names ("-p tcp"); iptables has a built-in fallback.
	if _, err := os.Stat("/etc/protocols"); err == nil {
		files = append(files, entry{path: "/etc/protocols", mode: 0o644, src: "/etc/protocols"})
	}
	return files, nil
}

func findLegacyMulti() (string, error) {
	for _, p := range []string{"/usr/sbin/" + legacyMulti, "/sbin/" + legacyMulti} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(legacyMulti); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s on this machine: the proxy image copies the host's iptables-legacy (Debian: apt-get install iptables)", legacyMulti)
}

// xtablesExtensions lists the extension libraries (libxt_*.so, ...).
func xtablesExtensions() ([]string, error) {
	for _, pattern := range extensionDirs {
		dirs, _ := filepath.Glob(pattern)
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "libxt_standard.so")); err != nil {
				continue
			}
			exts, err := filepath.Glob(filepath.Join(d, "*.so"))
			if err != nil {
				return nil, err
			}
			return exts, nil
		}
	}
	return nil, fmt.Errorf("no xtables extension directory (looked for libxt_standard.so in %s)", strings.Join(extensionDirs, ", "))
}

// sharedLibraries returns, sorted, every library (and the loader) that
// ldd lists for the files.
func sharedLibraries(files []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "ldd", f).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w: %s", f, err, strings.TrimSpace(string(out)))
		}
		libs, err := parseLdd(string(out))
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", f, err)
		}
		for _, l := range libs {
			seen[l] = true
		}
	}
	var libs []string
	for l := range seen {
		libs = append(libs, l)
	}
	slices.Sort(libs)
	return libs, nil
}

// parseLdd extracts the absolute library paths from ldd's output:
//
//	linux-vdso.so.1 (0x...)                       (none: in the kernel)
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)
//	/lib64/ld-linux-x86-64.so.2 (0x...)           (the loader)
//	libfoo.so.1 => not found                      (an error)
func parseLdd(out string) ([]string, error) {
	var libs []string
	var missing []string
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if lhs, rhs, ok := strings.Cut(line, "=>"); ok {
			rhs = strings.TrimSpace(rhs)
			if strings.HasPrefix(rhs, "not found") {
				missing = append(missing, strings.TrimSpace(lhs))
				continue
			}
			if f := strings.Fields(rhs); len(f) > 0 && strings.HasPrefix(f[0], "/") {
				libs = append(libs, f[0])
			}
			continue
		}
		if f := strings.Fields(line); strings.HasPrefix(f[0], "/") {
			libs = append(libs, f[0])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("libraries not found: %s", strings.Join(missing, ", "))
	}
	if len(libs) == 0 && !strings.Contains(out, "statically linked") && !strings.Contains(out, "not a dynamic executable") {
		return nil, errors.New("no libraries in ldd output")
	}
	return libs, nil
}

// Capability numbers (linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// netAdminCaps is the security.capability attribute granting CAP_NET_ADMIN
// and CAP_NET_RAW, permitted and effective ("cap_net_admin,cap_net_raw+ep"):
// a struct vfs_cap_data, revision 2, little endian.
func netAdminCaps() map[string]string {
	const (
		vfsCapRevision2      = 0x02000000
		vfsCapFlagsEffective = 0x000001
	)
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], vfsCapRevision2|vfsCapFlagsEffective)
	binary.LittleEndian.PutUint32(b[4:], 1<<capNetAdmin|1<<capNetRaw) // permitted, caps 0-31
	// inheritable 0-31, permitted 32-63, inheritable 32-63: none.
	return map[string]string{"security.capability": string(b)}
}
