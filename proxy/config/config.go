// Package config reads the proxy's configuration from the LINKERD2_PROXY_*
// environment variables that Linkerd's injector sets on the proxy container.
package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix is the prefix shared by all proxy environment variables.
const EnvPrefix = "LINKERD2_PROXY_"

// Names of the environment variables this package interprets.
const (
	EnvInboundListenAddr       = "LINKERD2_PROXY_INBOUND_LISTEN_ADDR"
	EnvOutboundListenAddrs     = "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS"
	EnvOutboundListenAddr      = "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR" // deprecated singular form
	EnvAdminListenAddr         = "LINKERD2_PROXY_ADMIN_LISTEN_ADDR"
	EnvControlListenAddr       = "LINKERD2_PROXY_CONTROL_LISTEN_ADDR"
	EnvInboundOpaquePorts      = "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"
	EnvInboundPorts            = "LINKERD2_PROXY_INBOUND_PORTS"
	EnvInboundDetectTimeout    = "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT"
	EnvOutboundDetectTimeout   = "LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT"
	EnvInboundConnectTimeout   = "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT"
	EnvOutboundConnectTimeout  = "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT"
	EnvShutdownEndpointEnabled = "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED"
	EnvShutdownGracePeriod     = "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD"
	EnvLog                     = "LINKERD2_PROXY_LOG"
	EnvLogFormat               = "LINKERD2_PROXY_LOG_FORMAT"
	EnvIngressMode             = "LINKERD2_PROXY_INGRESS_MODE"
	// EnvStaticEndpoints is this proxy's own addition: meshed endpoints known
	// without the destination service (see discovery.ParseStatic).
	EnvStaticEndpoints = "LINKERD2_PROXY_STATIC_ENDPOINTS"
	// EnvOutboundH2Upgrade is this proxy's own addition: "false" keeps
	// HTTP/1.1 between meshed proxies even where discovery says the peer
	// accepts HTTP/2 (the destination service's -enable-h2-upgrade decides
	// for the whole mesh).
	EnvOutboundH2Upgrade = "LINKERD2_PROXY_OUTBOUND_H2_UPGRADE"
	// EnvOutboundH2Connections is this proxy's own addition: how many
	// HTTP/2 connections a meshed peer gets at most (1 by default), more
	// being opened only while all of them have requests in flight.
	EnvOutboundH2Connections = "LINKERD2_PROXY_OUTBOUND_H2_CONNECTIONS"
)

const (
	maxOutboundListenAddrs = 2
	maxH2Connections       = 64
	defaultLogSpec         = "warn,linkerd=info"
	logFormatPlain         = "plain"
	logFormatJSON          = "json"
)

// Config is the proxy configuration.
type Config struct {
	// InboundListenAddr is where inbound (redirected) connections arrive.
	InboundListenAddr string
	// OutboundListenAddrs are where the application's outbound connections
	// arrive (at most two, e.g. an IPv4 and an IPv6 address).
	OutboundListenAddrs []string
	// AdminListenAddr serves /metrics, /ready, /live and friends.
	AdminListenAddr string
	// ControlListenAddr serves the tap API.
	ControlListenAddr string

	// InboundOpaquePorts are inbound ports on which protocol detection is
	// skipped.
	InboundOpaquePorts PortSet
	// InboundPorts are the ports the workload's containers declare.
	InboundPorts PortSet

	// InboundDetectTimeout and OutboundDetectTimeout bound protocol detection.
	InboundDetectTimeout, OutboundDetectTimeout time.Duration
	// InboundConnectTimeout and OutboundConnectTimeout bound connection
	// establishment to the target.
	InboundConnectTimeout, OutboundConnectTimeout time.Duration

	// ShutdownEndpointEnabled enables POST /shutdown on the admin server.
	ShutdownEndpointEnabled bool
	// ShutdownGracePeriod is how long to wait for connections to finish
	// after a shutdown begins.
	ShutdownGracePeriod time.Duration

	// Log is the log filter.
	Log LogSpec
	// LogFormat is "plain" or "json".
	LogFormat string

	// Identity configures mTLS.
	Identity Identity
	// Destination configures service discovery.
	Destination Destination
	// IngressMode routes outbound HTTP by l5d-dst-override (linkerd.io/inject: ingress).
	IngressMode bool
	// StaticEndpoints lists meshed endpoints and their identities
	// ("ADDR=IDENTITY[;opaque],...").
	StaticEndpoints string
	// OutboundH2Upgrade carries HTTP/1.1 requests to meshed peers that
	// accept HTTP/2 over HTTP/2, multiplexed on one connection per peer.
	OutboundH2Upgrade bool
	// OutboundH2Connections is how many HTTP/2 connections a peer gets at most.
	OutboundH2Connections int

	// Unknown lists the LINKERD2_PROXY_* variables in the environment that
	// are neither interpreted nor known to be set by Linkerd, sorted. Callers
	// should warn about them: they are usually typos.
	Unknown []string
}

// Default returns the configuration used when no variable is set.
func Default() *Config {
	log, err := ParseLogSpec(defaultLogSpec)
	if err != nil {
		panic(fmt.Sprintf("config: default log spec: %v", err))
	}
	return &Config{
		InboundListenAddr:      "0.0.0.0:4143",
		OutboundListenAddrs:    []string{"127.0.0.1:4140"},
		AdminListenAddr:        "0.0.0.0:4191",
		ControlListenAddr:      "0.0.0.0:4190",
		InboundDetectTimeout:   10 * time.Second,
		OutboundDetectTimeout:  10 * time.Second,
		InboundConnectTimeout:  100 * time.Millisecond,
		OutboundConnectTimeout: 1000 * time.Millisecond,
		ShutdownGracePeriod:    2 * time.Minute,
		Log:                    log,
		LogFormat:              logFormatPlain,
		Identity:               Identity{MinRefresh: 10 * time.Second, MaxRefresh: 24 * time.Hour},
		Destination:            defaultDestination(),
		OutboundH2Upgrade:      true,
		OutboundH2Connections:  1,
	}
}

// EnvError reports a variable whose value could not be parsed.
type EnvError struct {
	Name  string // the variable's name
	Value string // the value as found in the environment
	Err   error  // what is wrong with it
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s=%q: %v", e.Name, e.Value, e.Err)
}

func (e *EnvError) Unwrap() error { return e.Err }

// Errors wrapped by EnvError.
var (
	ErrInvalidDuration = errors.New("invalid duration")
	ErrInvalidBool     = errors.New(`invalid boolean: must be "true" or "false"`)
)

// FromEnv builds a Config from an environment in the form os.Environ
// returns ("NAME=value" strings; for repeated names the last one wins).
// Variables that are unset or set to an empty (or blank) value get their
// defaults. All invalid values are reported together, each as an *EnvError.
func FromEnv(environ []string) (*Config, error) {
	env := make(map[string]string)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, EnvPrefix) {
			env[name] = value
		}
	}

	c := Default()
	p := envParser{env: env}
	p.listenAddr(EnvInboundListenAddr, &c.InboundListenAddr)
	p.listenAddr(EnvAdminListenAddr, &c.AdminListenAddr)
	p.listenAddr(EnvControlListenAddr, &c.ControlListenAddr)
	if !p.listenAddrs(EnvOutboundListenAddrs, &c.OutboundListenAddrs) {
		var legacy string
		if p.listenAddr(EnvOutboundListenAddr, &legacy) {
			c.OutboundListenAddrs = []string{legacy}
		}
	}
	p.portSet(EnvInboundOpaquePorts, &c.InboundOpaquePorts)
	p.portSet(EnvInboundPorts, &c.InboundPorts)
	p.duration(EnvInboundDetectTimeout, &c.InboundDetectTimeout)
	p.duration(EnvOutboundDetectTimeout, &c.OutboundDetectTimeout)
	p.duration(EnvInboundConnectTimeout, &c.InboundConnectTimeout)
	p.duration(EnvOutboundConnectTimeout, &c.OutboundConnectTimeout)
	p.bool(EnvShutdownEndpointEnabled, &c.ShutdownEndpointEnabled)
	p.duration(EnvShutdownGracePeriod, &c.ShutdownGracePeriod)
	p.parse(EnvLog, func(v string) error {
		spec, err := ParseLogSpec(v)
		if err == nil {
			c.Log = spec
		}
		return err
	})
	p.parse(EnvLogFormat, func(v string) error {
		switch f := strings.ToLower(v); f {
		case logFormatPlain, logFormatJSON:
			c.LogFormat = f
			return nil
		default:
			return errors.New(`invalid log format: must be "plain" or "json"`)
		}
	})

	p.parseIdentity(c)
	p.parseDestination(c)
	p.bool(EnvIngressMode, &c.IngressMode)
	p.parse(EnvStaticEndpoints, func(v string) error { c.StaticEndpoints = v; return nil })
	p.bool(EnvOutboundH2Upgrade, &c.OutboundH2Upgrade)
	p.parse(EnvOutboundH2Connections, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxH2Connections {
			return fmt.Errorf("invalid connection count: must be 1 to %d", maxH2Connections)
		}
		c.OutboundH2Connections = n
		return nil
	})

	for name := range env {
		if !IsKnown(name) {
			c.Unknown = append(c.Unknown, name)
		}
	}
	slices.Sort(c.Unknown)

	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return c, nil
}

// envParser applies parsers to variables and collects the errors.
type envParser struct {
	env  map[string]string
	errs []error
}

// parse calls fn with the trimmed value of name if it is set and not blank,
// and reports whether fn succeeded.
func (p *envParser) parse(name string, fn func(string) error) bool {
	raw, ok := p.env[name]
	v := strings.TrimSpace(raw)
	if !ok || v == "" {
		return false
	}
	if err := fn(v); err != nil {
		p.errs = append(p.errs, &EnvError{Name: name, Value: raw, Err: err})
		return false
	}
	return true
}

func (p *envParser) listenAddr(name string, dst *string) bool {
	return p.parse(name, func(v string) error {
		if err := checkListenAddr(v); err != nil {
			return err
		}
		*dst = v
		return nil
	})
}

func (p *envParser) listenAddrs(name string, dst *[]string) bool {
	return p.parse(name, func(v string) error {
		var addrs []string
		for a := range strings.SplitSeq(v, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if err := checkListenAddr(a); err != nil {
				return err
			}
			addrs = append(addrs, a)
		}
		switch {
		case len(addrs) == 0:
			return errors.New("no listen address")
		case len(addrs) > maxOutboundListenAddrs:
			return fmt.Errorf("at most %d listen addresses are supported", maxOutboundListenAddrs)
		}
		*dst = addrs
		return nil
	})
}

func (p *envParser) portSet(name string, dst *PortSet) {
	p.parse(name, func(v string) error {
		s, err := ParsePortSet(v)
		if err == nil {
			*dst = s
		}
		return err
	})
}

func (p *envParser) duration(name string, dst *time.Duration) {
	p.parse(name, func(v string) error {
		d, err := ParseDuration(v)
		if err == nil {
			*dst = d
		}
		return err
	})
}

func (p *envParser) bool(name string, dst *bool) {
	p.parse(name, func(v string) error {
		switch v {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			return ErrInvalidBool
		}
		return nil
	})
}

// checkListenAddr accepts host:port with a decimal port in 0-65535 (0 asks
// the kernel for a free port). The host may be empty (all addresses).
func checkListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("invalid listen address: %w", err)
	}
	if strings.ContainsAny(host, " \t") {
		return fmt.Errorf("invalid listen address: bad host %q", host)
	}
	if !isDigits(port) {
		return fmt.Errorf("invalid listen address: port %q is not a number", port)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid listen address: port %q out of range", port)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseDuration parses a duration in Linkerd's form, a decimal integer with
// a unit of ms, s, m, h or d ("100ms", "10s", "365d"; a bare "0" is zero),
// or any non-negative duration time.ParseDuration accepts ("1m30s",
// "1.5s"). The error is ErrInvalidDuration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 {
		var unit time.Duration
		switch s[i:] {
		case "":
			if strings.Trim(s, "0") == "" {
				return 0, nil
			}
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		}
		if unit != 0 {
			n, err := strconv.ParseInt(s[:i], 10, 64)
			if err != nil || n > int64(maxDuration/unit) {
				return 0, ErrInvalidDuration
			}
			return time.Duration(n) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, ErrInvalidDuration
	}
	return d, nil
}

const maxDuration = time.Duration(1<<63 - 1)
