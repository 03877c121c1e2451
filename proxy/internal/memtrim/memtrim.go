//go:build linux

// Package memtrim gives back to the kernel the pages of the proxy's own
// executable that only its start-up touched.
//
// A Go binary's text and read-only data are file-backed: at start-up the
// runtime and the packages' initialisation fault in pages all over them,
// and the kernel maps whole runs around each fault. Most of those pages
// are not used again once the proxy serves, yet they count in its RSS
// (about 12 MiB of a 14 MiB idle proxy). Once the proxy is ready, Release
// drops them from the process (MADV_DONTNEED on the executable's read-only
// mappings: private, never written, so nothing is lost; the pages stay in
// the page cache); the pages the steady state uses fault back in on their
// next use. (MADV_PAGEOUT would also evict them from the page cache, but
// only for a process allowed to write the file, which a proxy running as
// its own user is not.)
package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Release reclaims the resident pages of the executable's file-backed
// mappings, and returns how many bytes of mappings it advised.
func Release() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		start, end, ok := parseRange(fields[0])
		if !ok {
			continue
		}
		// The mapping is not Go memory: madvise on its address range.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return total, fmt.Errorf("memtrim: madvise: %w", errno)
		}
		total += int(end - start)
	}
	return total, sc.Err()
}

func parseRange(s string) (start, end uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(a, 16, 64)
	end, err2 := strconv.ParseUint(b, 16, 64)
	return start, end, err1 == nil && err2 == nil && end > start
}
