// Package pipeline is the proxy's one HTTP request path: a protocol-neutral
// view of each request (Exchange) that both HTTP engines (package h1 for
// HTTP/1.1, package h2 for HTTP/2 and gRPC) produce, and one chain of small
// layers, configured once per direction, that every request goes through
// whatever engine carried it. A per-request rule (which endpoint, which
// header fields the proxy adds, what is counted, what an error looks like)
// is written once, as a layer or as a function here, never per engine.
//
// A server engine parses a request head into an Exchange and runs the
// direction's Chain with itself (or the client engine it pairs with) as the
// terminal Forwarder. Layers run in order, each calling Exchange.Next; the
// terminal sends the request and returns once the response head arrived.
// The engine then relays the response body and calls Exchange.Finish, which
// runs the layers' End hooks in reverse order. A request that cannot be
// forwarded is answered with Exchange.Fail's answer (l5d-proxy-error).
//
// See ../doc.go for the map of engines and layers.
package pipeline

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Header field names the proxy reads or writes.
const (
	// HeaderProxyError carries the reason of an answer the proxy made itself.
	HeaderProxyError = "l5d-proxy-error"
	// HeaderClientID carries the meshed client's verified identity to the
	// application; a value sent by anyone else is removed.
	HeaderClientID = "l5d-client-id"
	// HeaderDstCanonical carries, on outbound requests, the canonical name of
	// the service they were resolved to.
	HeaderDstCanonical = "l5d-dst-canonical"
	// HeaderDstOverride names the service an ingress controller means (ingress mode).
	HeaderDstOverride = "l5d-dst-override"
	// HeaderOrigProto marks a request that a proxy received as HTTP/1.1 and
	// sent to a peer proxy over HTTP/2, multiplexed with others on one
	// connection; the peer forwards it to its application as HTTP/1.1 again
	// and marks the response the same way. Its value is OrigProtoHTTP11.
	HeaderOrigProto = "l5d-orig-proto"
	OrigProtoHTTP11 = "HTTP/1.1"
)

// Protocol is the HTTP version a request arrived with.
type Protocol uint8

// Protocols.
const (
	HTTP1 Protocol = iota + 1
	HTTP2
)

// Conn describes the accepted connection requests arrive on. Layers keep
// per-connection caches in it; it is shared by the concurrent requests of
// an HTTP/2 connection.
type Conn struct {
	Client  netip.AddrPort
	OrigDst netip.AddrPort
	// TLS is the accepted connection's TLS status (client_id when mTLS).
	TLS transport.TLS

	metricsCache sync.Map // metricsKey -> *metrics.HTTP
	lastMetrics  atomic.Pointer[lastMetrics]
	canonical    atomic.Pointer[canonicalEntry]
	addrs        atomic.Pointer[ConnAddrs]
}

// ConnAddrs are a connection's addresses formatted "ip:port" ("" when unset).
type ConnAddrs struct{ Client, OrigDst string }

// Addrs returns c's addresses formatted, once per connection (tap events
// name them on every request).
func (c *Conn) Addrs() *ConnAddrs {
	if a := c.addrs.Load(); a != nil {
		return a
	}
	a := &ConnAddrs{Client: FormatAddr(c.Client), OrigDst: FormatAddr(c.OrigDst)}
	c.addrs.Store(a)
	return a
}

// FormatAddr formats a as "ip:port", "" when unset.
func FormatAddr(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// HeaderReader reads a request head's fields, whichever engine parsed it.
type HeaderReader interface {
	// Get returns the first value of the named field (case-insensitive),
	// "" when absent.
	Get(name string) string
}

// Field is a header field the proxy adds to a request it forwards.
type Field struct{ Name, Value string }

// Exchange is one request and its response as the layers see them. The
// server engine fills the request part, layers decide where it goes and
// what is added, the client engine fills the response part.
type Exchange struct {
	// The request, set by the server engine.
	Conn      *Conn
	Proto     Protocol
	Method    string
	Authority string
	// Path is the request target (origin form) or :path.
	Path  string
	GRPC  bool
	Start time.Time
	// Header is valid until the request is forwarded.
	Header HeaderReader

	// Decided by layers.
	Dst      discovery.Destination
	Endpoint *balance.Endpoint
	// Fields are added to the request as it is forwarded.
	Fields []Field
	// Edit changes the forwarded request's fields beyond Fields and the
	// response head's (a route's header filters); nil: none.
	Edit *Edit
	// OrigProto: outbound, the HTTP/1.1 request goes to the endpoint's proxy
	// over HTTP/2; inbound, it arrived that way and goes on as HTTP/1.1.
	OrigProto bool

	// The response, set by the client engine (or Fail).
	Status     int
	GRPCStatus int32 // -1: none
	HeadAt     time.Time
	// Err is why the exchange failed, nil when it did not.
	Err error
	// Answer is the proxy's own answer, set by Fail.
	Answer *Answer
	// Tap is the tap layer's state for the exchange, nil when untapped.
	Tap any
	// Route is the route layer's state for the exchange (package route),
	// nil when the request matched no route.
	Route any
	// Policy is the inbound authorization decision's labels (package
	// authz), added to the request metrics; nil without an authz layer.
	Policy *PolicyLabels

	chain    *Chain
	term     Forwarder
	pos      int
	reached  int
	done     func(error) // the balancer's feedback
	m        *metrics.HTTP
	key      metrics.ResponseKey
	keyReady bool
	finished bool
	fields   [4]Field
}

// Edit is a layer's change to an exchange's header fields beyond the
// request Fields it adds. The engines apply it: Remove when they forward
// the request (before Fields are added), RespRemove and RespFields when
// they write the response head they relay (not the proxy's own answers).
type Edit struct {
	// Remove names request fields (any case) left out of the forwarded request.
	Remove []string
	// RespRemove names response fields (any case) left out of the relayed
	// response; RespFields are added to it after.
	RespRemove []string
	RespFields []Field
	// Authority and Path, when not "", replace the forwarded request's
	// authority (Host, :authority) and target (a route's URLRewrite);
	// Exchange.Authority and Path keep the request's as received.
	Authority, Path string
}

// Removes reports whether names (an Edit's Remove or RespRemove) holds name.
func Removes(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Reset prepares x for a new request on conn.
func (x *Exchange) Reset(conn *Conn, proto Protocol, start time.Time) {
	*x = Exchange{Conn: conn, Proto: proto, Start: start, GRPCStatus: -1, Fields: x.fields[:0]}
}

// AddField adds a field to the forwarded request.
func (x *Exchange) AddField(name, value string) {
	x.Fields = append(x.Fields, Field{Name: name, Value: value})
}

// Responded records the arrival of the response head.
func (x *Exchange) Responded(status int) {
	x.Status = status
	x.HeadAt = time.Now()
}

// Key returns the response_total labels of the finished exchange.
func (x *Exchange) Key() metrics.ResponseKey {
	if !x.keyReady {
		x.key = Classify(x.Status, x.GRPCStatus, x.Err)
		x.keyReady = true
	}
	return x.key
}
