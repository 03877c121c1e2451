package config

import (
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv([]string{"PATH=/bin", "HOME=/root", "NOEQUALS"})
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := &Config{
		InboundListenAddr:      "0.0.0.0:4143",
		OutboundListenAddrs:    []string{"127.0.0.1:4140"},
		AdminListenAddr:        "0.0.0.0:4191",
		ControlListenAddr:      "0.0.0.0:4190",
		InboundDetectTimeout:   10 * time.Second,
		OutboundDetectTimeout:  10 * time.Second,
		InboundConnectTimeout:  100 * time.Millisecond,
		OutboundConnectTimeout: time.Second,
		ShutdownGracePeriod:    2 * time.Minute,
		Log:                    proxyenv.LogSpec{Raw: "warn,linkerd=info", Level: slog.LevelInfo},
		LogFormat:              "plain",
		Identity:               Identity{MinRefresh: 10 * time.Second, MaxRefresh: 24 * time.Hour},
		Destination:            defaultDestination(),
		Policy:                 defaultPolicy(),
		OutboundH2Upgrade:      true,
		OutboundH2Connections:  1,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("FromEnv() = %+v\nwant %+v", c, want)
	}
}

func mustPorts(t *testing.T, s string) PortSet {
	t.Helper()
	p, err := ParsePortSet(s)
	if err != nil {
		t.Fatalf("ParsePortSet(%q): %v", s, err)
	}
	return p
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want func(c *Config)
	}{
		{
			name: "listen addresses",
			env: []string{
				"LINKERD2_PROXY_INBOUND_LISTEN_ADDR=[::]:4143",
				"LINKERD2_PROXY_ADMIN_LISTEN_ADDR=127.0.0.1:0",
				"LINKERD2_PROXY_CONTROL_LISTEN_ADDR=:4190",
			},
			want: func(c *Config) {
				c.InboundListenAddr = "[::]:4143"
				c.AdminListenAddr = "127.0.0.1:0"
				c.ControlListenAddr = ":4190"
			},
		},
		{
			name: "outbound list",
			env:  []string{"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=127.0.0.1:4140, [::1]:4140,"},
			want: func(c *Config) { c.OutboundListenAddrs = []string{"127.0.0.1:4140", "[::1]:4140"} },
		},
		{
			name: "legacy outbound addr",
			env:  []string{"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR=127.0.0.1:5140"},
			want: func(c *Config) { c.OutboundListenAddrs = []string{"127.0.0.1:5140"} },
		},
		{
			name: "list wins over legacy addr",
			env: []string{
				"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR=127.0.0.1:5140",
				"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=127.0.0.1:6140",
			},
			want: func(c *Config) { c.OutboundListenAddrs = []string{"127.0.0.1:6140"} },
		},
		{
			name: "ports",
			env: []string{
				"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION=25,587,3306,4444,5432,6379,9300,11211",
				"LINKERD2_PROXY_INBOUND_PORTS=8080,9000-9010",
			},
			want: func(c *Config) {
				c.InboundOpaquePorts = mustPorts(t, "25,587,3306,4444,5432,6379,9300,11211")
				c.InboundPorts = mustPorts(t, "8080,9000-9010")
			},
		},
		{
			name: "durations",
			env: []string{
				"LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT=365d",
				"LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT=1m30s",
				"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT=250ms",
				"LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT=2s",
				"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=1h",
			},
			want: func(c *Config) {
				c.InboundDetectTimeout = 365 * 24 * time.Hour
				c.OutboundDetectTimeout = 90 * time.Second
				c.InboundConnectTimeout = 250 * time.Millisecond
				c.OutboundConnectTimeout = 2 * time.Second
				c.ShutdownGracePeriod = time.Hour
			},
		},
		{
			name: "shutdown endpoint",
			env:  []string{"LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=true"},
			want: func(c *Config) { c.ShutdownEndpointEnabled = true },
		},
		{
			name: "shutdown endpoint explicitly off",
			env:  []string{"LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=false"},
			want: func(c *Config) {},
		},
		{
			name: "log",
			env:  []string{"LINKERD2_PROXY_LOG=warn,linkerd=debug,hickory=error", "LINKERD2_PROXY_LOG_FORMAT=JSON"},
			want: func(c *Config) {
				c.Log = proxyenv.LogSpec{Raw: "warn,linkerd=debug,hickory=error", Level: slog.LevelDebug}
				c.LogFormat = "json"
			},
		},
		{
			name: "blank values keep defaults",
			env: []string{
				"LINKERD2_PROXY_INBOUND_PORTS=",
				"LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT= ",
				"LINKERD2_PROXY_LOG=",
				"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=",
			},
			want: func(c *Config) {},
		},
		{
			name: "last duplicate wins",
			env: []string{
				"LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT=bogus",
				"LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT=3s",
			},
			want: func(c *Config) { c.InboundDetectTimeout = 3 * time.Second },
		},
		{
			name: "value with equals sign",
			env:  []string{"LINKERD2_PROXY_LOG=linkerd=trace"},
			want: func(c *Config) { c.Log = proxyenv.LogSpec{Raw: "linkerd=trace", Level: proxyenv.LevelTrace} },
		},
		{
			name: "unknown variables",
			env: []string{
				"LINKERD2_PROXY_INBOUND_DETECT_TIMOUT=1s",
				"LINKERD2_PROXY_FOO=1",
				"LINKERD2_PROXY_DESTINATION_SVC_ADDR=localhost.:8086",
				"LINKERD2_PROXY_TRACE_COLLECTOR_SVC_ADDR=collector:55678",
				"LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN=100ms",
				"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL=10s",
				"LINKERD2_PROXY_IDENTITY_SPIRE_SOCKET=unix:///run/spire.sock",
				"linkerd2_proxy_lowercase=1",
				"HOSTNAME=web-0",
			},
			want: func(c *Config) {
				c.Unknown = []string{"LINKERD2_PROXY_FOO", "LINKERD2_PROXY_INBOUND_DETECT_TIMOUT"}
				c.Destination.SvcAddr = "localhost.:8086"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(tc.env)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("FromEnv() =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// injectedEnv is the proxy environment a default `linkerd inject` produces
// (downward-API references already resolved).
var injectedEnv = []string{
	"LINKERD2_PROXY_CORES=1",
	"LINKERD2_PROXY_CORES_MIN=1",
	"LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=false",
	"LINKERD2_PROXY_LOG=warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off",
	"LINKERD2_PROXY_LOG_FORMAT=plain",
	"LINKERD2_PROXY_DESTINATION_SVC_ADDR=linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
	"LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS=10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8",
	"LINKERD2_PROXY_POLICY_SVC_ADDR=linkerd-policy.linkerd.svc.cluster.local.:8090",
	`LINKERD2_PROXY_POLICY_WORKLOAD={"ns":"emojivoto", "pod":"web-5f86686c4d-58p7k"}`,
	"LINKERD2_PROXY_INBOUND_DEFAULT_POLICY=all-unauthenticated",
	"LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS=10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8",
	"LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT=3s",
	"LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT=5m",
	"LINKERD2_PROXY_CONTROL_STREAM_LIFETIME=1h",
	"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT=100ms",
	"LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT=1000ms",
	"LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT=5s",
	"LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT=90s",
	"LINKERD2_PROXY_CONTROL_LISTEN_ADDR=0.0.0.0:4190",
	"LINKERD2_PROXY_ADMIN_LISTEN_ADDR=0.0.0.0:4191",
	"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR=127.0.0.1:4140",
	"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=127.0.0.1:4140",
	"LINKERD2_PROXY_INBOUND_LISTEN_ADDR=0.0.0.0:4143",
	"LINKERD2_PROXY_INBOUND_IPS=10.42.0.17",
	"LINKERD2_PROXY_INBOUND_PORTS=8080",
	"LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES=svc.cluster.local.",
	"LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE=10000ms",
	"LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE=10000ms",
	"LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT=30s",
	"LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT=30s",
	"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL=10s",
	"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT=3s",
	"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL=10s",
	"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT=3s",
	"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION=25,587,3306,4444,5432,6379,9300,11211",
	`LINKERD2_PROXY_DESTINATION_CONTEXT={"ns":"emojivoto", "nodeName":"node-1", "pod":"web-5f86686c4d-58p7k"}`,
	"LINKERD2_PROXY_IDENTITY_DIR=/var/run/linkerd/identity/end-entity",
	"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n",
	"LINKERD2_PROXY_IDENTITY_TOKEN_FILE=/var/run/secrets/tokens/linkerd-identity-token",
	"LINKERD2_PROXY_IDENTITY_SVC_ADDR=linkerd-identity-headless.linkerd.svc.cluster.local.:8080",
	"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
	"LINKERD2_PROXY_IDENTITY_SVC_NAME=linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local",
	"LINKERD2_PROXY_DESTINATION_SVC_NAME=linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
	"LINKERD2_PROXY_POLICY_SVC_NAME=linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
	"LINKERD2_PROXY_TAP_SVC_NAME=tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local",
	"LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY=8443",
	"LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES=svc.cluster.local.",
	"LINKERD2_PROXY_INGRESS_MODE=true",
	"LINKERD2_PROXY_ACCESS_LOG=apache",
	"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=60s",
	"LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS=false",
	"LINKERD2_PROXY_CORES_MAX=2",
	"LINKERD2_PROXY_CORES_MAX_RATIO=0.5",
	"LINKERD2_PROXY_TRACE_PROTOCOL=opentelemetry",
	"LINKERD2_PROXY_TRACE_SERVICE_NAME=linkerd-proxy",
	"LINKERD2_PROXY_TRACE_ATTRIBUTES_PATH=/var/run/linkerd/podinfo/labels",
	"LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES=k8s.pod.uid=abc",
	"_pod_name=web-5f86686c4d-58p7k",
	"_l5d_ns=linkerd",
}

func TestFromEnvInjected(t *testing.T) {
	c, err := FromEnv(injectedEnv)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if len(c.Unknown) != 0 {
		t.Errorf("Unknown = %v, want none", c.Unknown)
	}
	if !c.InboundOpaquePorts.Contains(3306) || c.InboundOpaquePorts.Contains(8080) {
		t.Errorf("InboundOpaquePorts = %v", c.InboundOpaquePorts)
	}
	if id := c.Identity; !id.Enabled || id.LocalName != "web.emojivoto.serviceaccount.identity.linkerd.cluster.local" ||
		id.SvcAddr != "linkerd-identity-headless.linkerd.svc.cluster.local.:8080" || id.TokenFile == "" || id.TrustAnchorsPEM == "" {
		t.Errorf("Identity = %+v", id)
	}
	if c.Log.Level != slog.LevelInfo || c.ShutdownGracePeriod != time.Minute {
		t.Errorf("Log = %+v, ShutdownGracePeriod = %v", c.Log, c.ShutdownGracePeriod)
	}
}

func TestOutboundH2Upgrade(t *testing.T) {
	for env, want := range map[string]bool{"": true, "true": true, "false": false} {
		c, err := FromEnv([]string{proxyenv.OutboundH2Upgrade + "=" + env})
		if err != nil {
			t.Fatal(err)
		}
		if c.OutboundH2Upgrade != want || c.OutboundH2Connections != 1 || len(c.Unknown) != 0 {
			t.Errorf("%s=%q: OutboundH2Upgrade %t (unknown %v), want %t", proxyenv.OutboundH2Upgrade, env, c.OutboundH2Upgrade, c.Unknown, want)
		}
	}
}

func TestFromEnvErrors(t *testing.T) {
	tests := []struct {
		name, value string
		wantMsg     string // the whole error message
		wantIs      error  // optional
	}{
		{proxyenv.InboundDetectTimeout, "ten", `LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT="ten": invalid duration`, ErrInvalidDuration},
		{proxyenv.OutboundDetectTimeout, "10", `LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT="10": invalid duration`, ErrInvalidDuration},
		{proxyenv.InboundConnectTimeout, "-1s", `LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT="-1s": invalid duration`, ErrInvalidDuration},
		{proxyenv.OutboundConnectTimeout, "1.5d", `LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT="1.5d": invalid duration`, ErrInvalidDuration},
		{proxyenv.ShutdownGracePeriod, "99999999999d", `LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD="99999999999d": invalid duration`, ErrInvalidDuration},
		{proxyenv.ShutdownEndpointEnabled, "yes", `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED="yes": invalid boolean: must be "true" or "false"`, ErrInvalidBool},
		{proxyenv.ShutdownEndpointEnabled, "1", `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED="1": invalid boolean: must be "true" or "false"`, ErrInvalidBool},
		{proxyenv.InboundListenAddr, "4143", `LINKERD2_PROXY_INBOUND_LISTEN_ADDR="4143": invalid listen address: address 4143: missing port in address`, nil},
		{proxyenv.AdminListenAddr, "0.0.0.0:admin", `LINKERD2_PROXY_ADMIN_LISTEN_ADDR="0.0.0.0:admin": invalid listen address: port "admin" is not a number`, nil},
		{proxyenv.ControlListenAddr, "0.0.0.0:70000", `LINKERD2_PROXY_CONTROL_LISTEN_ADDR="0.0.0.0:70000": invalid listen address: port "70000" out of range`, nil},
		{proxyenv.ControlListenAddr, "0.0.0.0:", `LINKERD2_PROXY_CONTROL_LISTEN_ADDR="0.0.0.0:": invalid listen address: port "" is not a number`, nil},
		{proxyenv.ControlListenAddr, "my host:1", `LINKERD2_PROXY_CONTROL_LISTEN_ADDR="my host:1": invalid listen address: bad host "my host"`, nil},
		{proxyenv.OutboundListenAddr, "127.0.0.1:-1", `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR="127.0.0.1:-1": invalid listen address: port "-1" is not a number`, nil},
		{proxyenv.OutboundListenAddrs, "a:1,b:2,c:3", `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS="a:1,b:2,c:3": at most 2 listen addresses are supported`, nil},
		{proxyenv.OutboundListenAddrs, " , ", `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=" , ": no listen address`, nil},
		{proxyenv.OutboundListenAddrs, "127.0.0.1:4140,[::1]", `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS="127.0.0.1:4140,[::1]": invalid listen address: address [::1]: missing port in address`, nil},
		{proxyenv.InboundOpaquePorts, "0", `LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION="0": invalid port "0": must be between 1 and 65535`, nil},
		{proxyenv.InboundPorts, "8080,http", `LINKERD2_PROXY_INBOUND_PORTS="8080,http": invalid port "http": not a number`, nil},
		{proxyenv.InboundPorts, "9-3", `LINKERD2_PROXY_INBOUND_PORTS="9-3": invalid port range "9-3": start is greater than end`, nil},
		{proxyenv.Log, "verbose", `LINKERD2_PROXY_LOG="verbose": invalid log level "verbose" in directive "verbose"`, nil},
		{proxyenv.Log, "warn,linkerd=loud", `LINKERD2_PROXY_LOG="warn,linkerd=loud": invalid log level "loud" in directive "linkerd=loud"`, nil},
		{proxyenv.Log, "=info", `LINKERD2_PROXY_LOG="=info": invalid log directive "=info": empty target`, nil},
		{proxyenv.LogFormat, "xml", `LINKERD2_PROXY_LOG_FORMAT="xml": invalid log format: must be "plain" or "json"`, nil},
		{proxyenv.OutboundH2Upgrade, "no", `LINKERD2_PROXY_OUTBOUND_H2_UPGRADE="no": invalid boolean: must be "true" or "false"`, ErrInvalidBool},
		{proxyenv.OutboundH2Connections, "0", `LINKERD2_PROXY_OUTBOUND_H2_CONNECTIONS="0": invalid connection count: must be 1 to 64`, nil},
		{proxyenv.OutboundH2Connections, "two", `LINKERD2_PROXY_OUTBOUND_H2_CONNECTIONS="two": invalid connection count: must be 1 to 64`, nil},
		{proxyenv.InboundDefaultPolicy, "everyone", `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY="everyone": "everyone" is not one of [all-unauthenticated all-authenticated cluster-unauthenticated cluster-authenticated deny audit]`, nil},
		{proxyenv.PolicyClusterNetworks, "10.0.0.0/99", `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS="10.0.0.0/99": invalid network "10.0.0.0/99"`, nil},
		{proxyenv.PolicySvcAddr, "policy", `LINKERD2_PROXY_POLICY_SVC_ADDR="policy": invalid address: address policy: missing port in address`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c, err := FromEnv([]string{tc.name + "=" + tc.value})
			if err == nil {
				t.Fatalf("FromEnv succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("FromEnv returned a config with an error")
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("error = %q\nwant    %q", err, tc.wantMsg)
			}
			var ee *EnvError
			if !errors.As(err, &ee) || ee.Name != tc.name || ee.Value != tc.value {
				t.Errorf("error %v is not an *EnvError for %s=%q", err, tc.name, tc.value)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
		})
	}
}

func TestFromEnvReportsAllErrors(t *testing.T) {
	_, err := FromEnv([]string{
		"LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT=ten",
		"LINKERD2_PROXY_INBOUND_PORTS=0",
		"LINKERD2_PROXY_LOG_FORMAT=xml",
	})
	if err == nil {
		t.Fatal("FromEnv succeeded")
	}
	for _, name := range []string{proxyenv.InboundDetectTimeout, proxyenv.InboundPorts, proxyenv.LogFormat} {
		if !strings.Contains(err.Error(), name+"=") {
			t.Errorf("error %q does not mention %s", err, name)
		}
	}
}

func TestIsKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"LINKERD2_PROXY_INBOUND_LISTEN_ADDR", true},
		{"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", true},
		{"LINKERD2_PROXY_TAP_SVC_NAME", true},
		{"LINKERD2_PROXY_CORES_MAX_RATIO", true},
		{"LINKERD2_PROXY_TRACE_COLLECTOR_SVC_NAME", true},
		{"LINKERD2_PROXY_IDENTITY_SPIRE_SOCKET", true},
		{"LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_JITTER", true},
		{"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", true},
		{"LINKERD2_PROXY_INBOUND_DETECT_TIMEOT", false},
		{"LINKERD2_PROXY_", false},
		{"PATH", false},
		{"TRACE_PROTOCOL", false},
		{"X_EXP_BACKOFF_MIN", false},
	}
	for _, tc := range tests {
		if got := IsKnown(tc.name); got != tc.want {
			t.Errorf("IsKnown(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIdentityConfig(t *testing.T) {
	t.Parallel()
	const anchors = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	full := []string{
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR=127.0.0.1:8080",
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=web.demo.serviceaccount.identity.linkerd.cluster.local",
		"LINKERD2_PROXY_IDENTITY_TOKEN_FILE=/tok",
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=" + anchors,
	}
	tests := []struct {
		name    string
		env     []string
		enabled bool
		errs    []string // variable names the error must mention
	}{
		{name: "none set: disabled", env: nil},
		{name: "disabled wins", env: slices.Concat([]string{"LINKERD2_PROXY_IDENTITY_DISABLED=true"}, full)},
		{name: "loopback service needs no name", env: full, enabled: true},
		{name: "remote service needs a name",
			env:  slices.Concat(full[1:], []string{"LINKERD2_PROXY_IDENTITY_SVC_ADDR=identity.linkerd:8080"}),
			errs: []string{"LINKERD2_PROXY_IDENTITY_SVC_NAME"}},
		{name: "partial configuration names what is missing",
			env:  []string{"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=x"},
			errs: []string{"LINKERD2_PROXY_IDENTITY_SVC_ADDR", "LINKERD2_PROXY_IDENTITY_TOKEN_FILE", "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"}},
		{name: "anchors must be PEM",
			env:  slices.Concat(full[:3], []string{"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=hello"}),
			errs: []string{"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"}},
		{name: "bad refresh", env: slices.Concat(full, []string{"LINKERD2_PROXY_IDENTITY_MIN_REFRESH=soon"}),
			errs: []string{"LINKERD2_PROXY_IDENTITY_MIN_REFRESH"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(tc.env)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("want an error naming %v", tc.errs)
				}
				for _, name := range tc.errs {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Identity.Enabled != tc.enabled {
				t.Fatalf("Enabled = %v, want %v", c.Identity.Enabled, tc.enabled)
			}
		})
	}
}

func TestDialTarget(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"localhost.:8080", "127.0.0.1:8080"},
		{"localhost:8086", "127.0.0.1:8086"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"[::1]:8080", "[::1]:8080"},
		{"linkerd-identity-headless.linkerd.svc.cluster.local.:8080", "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"},
		{"localhost.example.com:8080", "localhost.example.com:8080"},
		{"no-port", "no-port"},
	} {
		if got := DialTarget(tc.addr); got != tc.want {
			t.Errorf("DialTarget(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
