package destination

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// defaultPort is the port of an authority without one.
const defaultPort = 80

// target is what a Get request names: a Service (optionally one pod of it,
// by hostname) or an IP address, and a port. It is comparable and used as
// the key of shared watchers.
type target struct {
	// Service targets.
	namespace, service string
	// hostname selects the endpoints with this hostname
	// (<hostname>.<service>.<namespace>.svc.<domain>, as for StatefulSets).
	hostname string

	// IP targets (a pod IP or a Service's cluster IP).
	ip netip.Addr

	port uint32

	// external: a well-formed name outside the cluster domain, which the
	// control plane does not know.
	external bool
}

func (t target) String() string {
	port := strconv.FormatUint(uint64(t.port), 10)
	switch {
	case t.ip.IsValid():
		return net.JoinHostPort(t.ip.String(), port)
	case t.external:
		return "external:" + port
	case t.hostname != "":
		return t.hostname + "." + t.service + "." + t.namespace + ":" + port
	}
	return t.service + "." + t.namespace + ":" + port
}

var errInvalidAuthority = errors.New("invalid authority")

// parseAuthority parses a Get authority: "host[:port]" where host is an IP
// address or a DNS name; the port defaults to 80. A name ending in
// ".svc.<clusterDomain>" (with or without a trailing dot) must be
// "<service>.<namespace>" or "<hostname>.<service>.<namespace>" before that
// suffix. Other well-formed names are external targets. Errors wrap
// errInvalidAuthority.
func parseAuthority(authority, clusterDomain string) (target, error) {
	host, port, err := splitHostPort(authority)
	if err != nil {
		return target{}, fmt.Errorf("%w %q: %w", errInvalidAuthority, authority, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return target{}, fmt.Errorf("%w %q: IPv6 zones are not supported", errInvalidAuthority, authority)
		}
		return target{ip: ip.Unmap(), port: port}, nil
	}

	name := strings.TrimSuffix(strings.ToLower(host), ".")
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !isDNSLabel(l) {
			return target{}, fmt.Errorf("%w %q: %q is not a valid DNS label", errInvalidAuthority, authority, l)
		}
	}
	suffix := ".svc." + strings.TrimSuffix(strings.ToLower(clusterDomain), ".")
	local, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return target{external: true, port: port}, nil
	}
	parts := strings.Split(local, ".")
	switch len(parts) {
	case 2:
		return target{service: parts[0], namespace: parts[1], port: port}, nil
	case 3:
		return target{hostname: parts[0], service: parts[1], namespace: parts[2], port: port}, nil
	}
	return target{}, fmt.Errorf("%w %q: want <service>.<namespace>%s or <hostname>.<service>.<namespace>%s", errInvalidAuthority, authority, suffix, suffix)
}

func splitHostPort(authority string) (string, uint32, error) {
	if authority == "" {
		return "", 0, errors.New("empty")
	}
	var hostPart, portPart string
	switch {
	case strings.HasPrefix(authority, "["):
		end := strings.Index(authority, "]")
		if end < 0 {
			return "", 0, errors.New("missing ']'")
		}
		hostPart = authority[1:end]
		rest := authority[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return "", 0, errors.New("unexpected text after ']'")
			}
			portPart = p
			if portPart == "" {
				return "", 0, errors.New("empty port")
			}
		}
		if _, err := netip.ParseAddr(hostPart); err != nil || !strings.Contains(hostPart, ":") {
			return "", 0, errors.New("brackets must hold an IPv6 address")
		}
	case strings.Count(authority, ":") > 1:
		hostPart = authority // a bare IPv6 address
	default:
		h, p, hasPort := strings.Cut(authority, ":")
		hostPart, portPart = h, p
		if hasPort && p == "" {
			return "", 0, errors.New("empty port")
		}
	}
	if hostPart == "" {
		return "", 0, errors.New("empty host")
	}
	if portPart == "" {
		return hostPart, defaultPort, nil
	}
	n, err := strconv.ParseUint(portPart, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("invalid port %q", portPart)
	}
	return hostPart, uint32(n), nil
}

// isDNSLabel reports whether s is an RFC 1123 label: 1-63 lower-case
// letters, digits and '-', starting and ending with a letter or digit.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
