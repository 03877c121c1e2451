package config

import (
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// PortSet is an immutable set of TCP ports. The zero value is empty.
type PortSet struct {
	ranges []portRange // sorted, non-overlapping, non-adjacent
}

type portRange struct{ lo, hi uint16 }

// ParsePortSet parses a comma-separated list of ports (1-65535) and
// inclusive ranges "a-b" with a <= b, e.g. "3306,5432,8000-8100". Blank
// elements are ignored, so "" is the empty set.
func ParsePortSet(s string) (PortSet, error) {
	var rs []portRange
	for elem := range strings.SplitSeq(s, ",") {
		elem = strings.TrimSpace(elem)
		if elem == "" {
			continue
		}
		r, err := parsePortRange(elem)
		if err != nil {
			return PortSet{}, err
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b portRange) int { return int(a.lo) - int(b.lo) })
	// Merge overlapping and adjacent ranges.
	var merged []portRange
	for _, r := range rs {
		if n := len(merged); n > 0 && int(r.lo) <= int(merged[n-1].hi)+1 {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	return PortSet{ranges: merged}, nil
}

func parsePortRange(s string) (portRange, error) {
	loStr, hiStr, isRange := strings.Cut(s, "-")
	lo, err := parsePort(strings.TrimSpace(loStr))
	if err != nil {
		return portRange{}, err
	}
	if !isRange {
		return portRange{lo, lo}, nil
	}
	hi, err := parsePort(strings.TrimSpace(hiStr))
	if err != nil {
		return portRange{}, err
	}
	if lo > hi {
		return portRange{}, fmt.Errorf("invalid port range %q: start is greater than end", s)
	}
	return portRange{lo, hi}, nil
}

func parsePort(s string) (uint16, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("invalid port %q: not a number", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid port %q: must be between 1 and 65535", s)
	}
	return uint16(n), nil
}

// Contains reports whether port is in the set.
func (s PortSet) Contains(port uint16) bool {
	i, found := slices.BinarySearchFunc(s.ranges, port, func(r portRange, p uint16) int {
		return int(r.lo) - int(p)
	})
	if found {
		return true
	}
	return i > 0 && port <= s.ranges[i-1].hi
}

// IsEmpty reports whether the set has no ports.
func (s PortSet) IsEmpty() bool { return len(s.ranges) == 0 }

// All yields the ports in the set in increasing order.
func (s PortSet) All() iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		for _, r := range s.ranges {
			for p := int(r.lo); p <= int(r.hi); p++ {
				if !yield(uint16(p)) {
					return
				}
			}
		}
	}
}

// String returns the set in canonical form: sorted, with overlapping and
// adjacent entries merged into ranges, e.g. "80,443,8000-8100".
func (s PortSet) String() string {
	var b strings.Builder
	for i, r := range s.ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.lo)))
		if r.hi != r.lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.hi)))
		}
	}
	return b.String()
}

// DefaultOpaquePorts are the ports Linkerd's destination service treats as
// opaque unless told otherwise: server-speaks-first protocols (SMTP, MySQL,
// Galera, PostgreSQL, Redis, Elasticsearch, memcached).
const DefaultOpaquePorts = "25,587,3306,4444,5432,6379,9300,11211"
