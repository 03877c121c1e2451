package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat and
// /proc/stat. It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// ticksToDuration converts clock ticks to a duration.
func ticksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / clockTicks)
}

// procStat holds the fields of /proc/<pid>/stat the harness uses.
type procStat struct {
	PPID  int
	UTime uint64 // clock ticks in user mode
	STime uint64 // clock ticks in kernel mode
}

// parseProcStat parses the content of /proc/<pid>/stat. The command name (the
// second field) is in parentheses and may itself contain spaces and
// parentheses, so the fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, errors.New("parse /proc/<pid>/stat: no command name")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[end+1:]))
	const (
		ppidIx  = 4 - 3
		utimeIx = 14 - 3
		stimeIx = 15 - 3
	)
	if len(f) <= stimeIx {
		return procStat{}, fmt.Errorf("parse /proc/<pid>/stat: %d fields after the command name, want more than %d", len(f), stimeIx)
	}
	ppid, err := strconv.Atoi(f[ppidIx])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/<pid>/stat ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[utimeIx], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/<pid>/stat utime: %w", err)
	}
	st, err := strconv.ParseUint(f[stimeIx], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/<pid>/stat stime: %w", err)
	}
	return procStat{PPID: ppid, UTime: ut, STime: st}, nil
}

// parseVmRSS returns the VmRSS line of /proc/<pid>/status in bytes. Kernel
// threads and zombies have no such line; they count as 0.
func parseVmRSS(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse VmRSS %q: want \"<n> kB\"", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return 0, nil
}

// cpuTimes is the machine-wide "cpu" line of /proc/stat, in clock ticks.
type cpuTimes struct {
	Busy  uint64 // user, nice, system, irq, softirq
	Idle  uint64 // idle, iowait
	Steal uint64 // taken by the hypervisor
}

// Total is every tick of the line.
func (c cpuTimes) Total() uint64 { return c.Busy + c.Idle + c.Steal }

// sub returns c - prev.
func (c cpuTimes) sub(prev cpuTimes) cpuTimes {
	return cpuTimes{Busy: c.Busy - prev.Busy, Idle: c.Idle - prev.Idle, Steal: c.Steal - prev.Steal}
}

// parseCPUTimes parses the aggregate "cpu" line of /proc/stat. Guest time is
// already included in user and nice, so it is not added again.
func parseCPUTimes(b []byte) (cpuTimes, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return cpuTimes{}, fmt.Errorf("parse /proc/stat: cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("parse /proc/stat field %d: %w", i+1, err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq steal
		return cpuTimes{
			Busy:  v[0] + v[1] + v[2] + v[5] + v[6],
			Idle:  v[3] + v[4],
			Steal: v[7],
		}, nil
	}
	return cpuTimes{}, errors.New("parse /proc/stat: no cpu line")
}

// readCPUTimes reads the machine-wide CPU times.
func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseCPUTimes(b)
}

// processTree returns roots and all their live descendants, found by
// scanning the parent of every process in /proc.
func processTree(roots []int) ([]int, error) {
	children, err := childrenMap()
	if err != nil {
		return nil, err
	}
	return descendants(roots, children), nil
}

// descendants walks children from roots, breadth first; every pid appears
// once.
func descendants(roots []int, children map[int][]int) []int {
	seen := make(map[int]bool)
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

// childrenMap maps every process in /proc to its children.
func childrenMap() (map[int][]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	children := make(map[int][]int)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseProcStat(b)
		if err != nil {
			continue
		}
		children[st.PPID] = append(children[st.PPID], pid)
	}
	return children, nil
}

// usage is the resource use of a set of processes at one instant.
type usage struct {
	CPU time.Duration // user + system time since each process started
	RSS int64         // resident set, bytes
}

// sampleUsage sums CPU time and RSS over the process trees rooted at roots.
// A process that exits while it is read is skipped.
func sampleUsage(roots []int) (usage, error) {
	pids, err := processTree(roots)
	if err != nil {
		return usage{}, err
	}
	var u usage
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		st, err := parseProcStat(b)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.CPU += ticksToDuration(st.UTime + st.STime)
		b, err = os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue
		}
		rss, err := parseVmRSS(b)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.RSS += rss
	}
	return u, nil
}
