package k8s

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of TCP ports; a single port has Lo == Hi.
type PortRange struct {
	Lo, Hi uint16
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port uint32) bool {
	return port >= uint32(r.Lo) && port <= uint32(r.Hi)
}

// String formats the range as "a" or "a-b".
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// ParsePortRange parses "8080" or "4000-4100" (inclusive, bounds 1-65535,
// surrounding spaces allowed).
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		p, err := parsePort(s)
		if err != nil {
			return PortRange{}, err
		}
		return PortRange{Lo: p, Hi: p}, nil
	}
	l, err := parsePort(lo)
	if err != nil {
		return PortRange{}, fmt.Errorf("range %q: %w", s, err)
	}
	h, err := parsePort(hi)
	if err != nil {
		return PortRange{}, fmt.Errorf("range %q: %w", s, err)
	}
	if l > h {
		return PortRange{}, fmt.Errorf("range %q: lower bound is above upper bound", s)
	}
	return PortRange{Lo: l, Hi: h}, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid port %q: want a number between 1 and 65535", s)
	}
	return uint16(n), nil
}

// PortSet is a set of ports, as written in annotations such as
// config.linkerd.io/opaque-ports: a comma-separated list of ports and ranges.
// The zero value is the empty set.
type PortSet []PortRange

// Contains reports whether port is in the set.
func (s PortSet) Contains(port uint32) bool {
	for _, r := range s {
		if r.Contains(port) {
			return true
		}
	}
	return false
}

// String formats the set as a comma-separated list, ParsePortSet's input format.
func (s PortSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ParsePortSet parses a comma-separated list of ports and ranges, e.g.
// "25,587,8000-8100". Empty items are ignored, so "" is the empty set. The
// result holds every valid item even when err is non-nil; err describes the
// invalid ones. Callers reading annotations typically use the valid part and
// log err, as one bad item should not discard the rest.
func ParsePortSet(s string) (PortSet, error) {
	return ParsePortSetNamed(s, nil)
}

// ParsePortSetNamed is ParsePortSet that also accepts port names, resolved
// with names (for pods, ContainerPortNames). An unknown name is an error.
func ParsePortSetNamed(s string, names map[string]uint16) (PortSet, error) {
	var (
		set  PortSet
		errs []error
	)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, ok := names[item]; ok && p != 0 {
			set = append(set, PortRange{Lo: p, Hi: p})
			continue
		}
		r, err := ParsePortRange(item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set = append(set, r)
	}
	slices.SortFunc(set, func(a, b PortRange) int {
		if a.Lo != b.Lo {
			return int(a.Lo) - int(b.Lo)
		}
		return int(a.Hi) - int(b.Hi)
	})
	return set, errors.Join(errs...)
}

// MustParsePortSet is ParsePortSet for constants; it panics on an invalid item.
func MustParsePortSet(s string) PortSet {
	set, err := ParsePortSet(s)
	if err != nil {
		panic(err)
	}
	return set
}
