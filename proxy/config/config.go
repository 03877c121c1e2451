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

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
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
	Log proxyenv.LogSpec
	// LogFormat is "plain" or "json".
	LogFormat string

	// Identity configures mTLS.
	Identity Identity
	// Destination configures service discovery.
	Destination Destination
	// Policy configures inbound authorization.
	Policy Policy
	// IngressMode routes outbound HTTP by l5d-dst-override (linkerd.io/inject: ingress).
	IngressMode bool
	// TapSvcName is the tap service's identity; empty: tap is not enabled.
	TapSvcName string
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
	log, err := proxyenv.ParseLogSpec(defaultLogSpec)
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
		Policy:                 defaultPolicy(),
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
	ErrInvalidDuration = proxyenv.ErrInvalidDuration
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
		if ok && strings.HasPrefix(name, proxyenv.Prefix) {
			env[name] = value
		}
	}

	c := Default()
	p := envParser{env: env}
	p.listenAddr(proxyenv.InboundListenAddr, &c.InboundListenAddr)
	p.listenAddr(proxyenv.AdminListenAddr, &c.AdminListenAddr)
	p.listenAddr(proxyenv.ControlListenAddr, &c.ControlListenAddr)
	if !p.listenAddrs(proxyenv.OutboundListenAddrs, &c.OutboundListenAddrs) {
		var legacy string
		if p.listenAddr(proxyenv.OutboundListenAddr, &legacy) {
			c.OutboundListenAddrs = []string{legacy}
		}
	}
	p.portSet(proxyenv.InboundOpaquePorts, &c.InboundOpaquePorts)
	p.portSet(proxyenv.InboundPorts, &c.InboundPorts)
	p.duration(proxyenv.InboundDetectTimeout, &c.InboundDetectTimeout)
	p.duration(proxyenv.OutboundDetectTimeout, &c.OutboundDetectTimeout)
	p.duration(proxyenv.InboundConnectTimeout, &c.InboundConnectTimeout)
	p.duration(proxyenv.OutboundConnectTimeout, &c.OutboundConnectTimeout)
	p.bool(proxyenv.ShutdownEndpointEnabled, &c.ShutdownEndpointEnabled)
	p.duration(proxyenv.ShutdownGracePeriod, &c.ShutdownGracePeriod)
	p.parse(proxyenv.Log, func(v string) error {
		spec, err := proxyenv.ParseLogSpec(v)
		if err == nil {
			c.Log = spec
		}
		return err
	})
	p.parse(proxyenv.LogFormat, func(v string) error {
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
	p.parsePolicy(c)
	p.bool(proxyenv.IngressMode, &c.IngressMode)
	p.parse(proxyenv.TapSvcName, func(v string) error { c.TapSvcName = v; return nil })
	p.parse(proxyenv.StaticEndpoints, func(v string) error { c.StaticEndpoints = v; return nil })
	p.bool(proxyenv.OutboundH2Upgrade, &c.OutboundH2Upgrade)
	p.parse(proxyenv.OutboundH2Connections, func(v string) error {
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
		d, err := proxyenv.ParseDuration(v)
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
