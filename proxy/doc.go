// Package proxy is the data plane: linkerd-proxy's packages, one per
// concept. This file is the map of its request path.
//
// # Connections
//
// A connection redirected by linkerd-init arrives at the inbound (4143) or
// outbound (4140) listener (package app), is handed to package inbound or
// outbound, which terminates mesh TLS (meshtls; inbound only), detects the
// protocol (detect), and gives it to an engine: opaque TCP and TLS that is
// not ours go to package tcp, HTTP to package httpproxy.
//
// # Requests: one pipeline
//
// Every HTTP request, whichever engine carries it, becomes a
// pipeline.Exchange and goes through its direction's pipeline.Chain,
// defined in one place (pipeline/chains.go):
//
//	inbound:  metrics → authz → client-id → orig-proto → dst → balance → tap → client engine
//	outbound: metrics → dst (override, canonical) → route → balance → orig-proto → tap → client engine
//
// (route: the destination's ServiceProfile routes — per-route metrics,
// timeouts, retries within the budget of requests the engine can send
// again (pipeline.Replayer), HTTPRoute filters (a redirect is a
// pipeline.AnswerError; header and URL changes a pipeline.Edit the engines
// apply when they forward the request and relay the response head) —
// when a destination service is configured: package route.)
//
// (tap only when LINKERD2_PROXY_TAP_SVC_NAME enables it: package tap, which
// also serves the tap API on the control port. authz is package authz: the
// inbound policy from the policy controller, or the default policy; it also
// checks inbound TCP connections, in package inbound.)
//
// A layer does one job (a type implementing pipeline.Layer, and
// pipeline.Ender to act when the response ends); adding one means writing
// it and adding it to a list. What a proxy answers itself (no endpoint,
// connect failure, timeout, malformed request) is pipeline.Exchange.Fail's
// answer for every engine: the status with l5d-proxy-error, or for gRPC a
// trailers-only UNAVAILABLE. Classification (response_total's
// classification and error labels, what the balancer learns) is
// pipeline.Classify. The hop-by-hop fields are pipeline.HopByHop.
//
// # Engines
//
// Below the chain are the protocol engines, all the proxy's own except the
// rare hand-off: h1 (HTTP/1.1 server and client, one goroutine per
// connection, heads parsed in place), h2 (HTTP/2 server and client on
// x/net's framer and HPACK, h2.Relay as the client engine of requests that
// arrived over HTTP/2), and net/http's server and transport for what the h1
// server hands off. Which engines serve a request:
//
//	direction  protocol                       peer      server engine  client engine
//	outbound   HTTP/1.1                       meshed    h1             h2 (orig-proto: HTTP/1.1 over one HTTP/2 connection per peer)
//	outbound   HTTP/1.1                       unmeshed  h1             h1 (pooled)
//	outbound   HTTP/2, h2c, gRPC              any       h2             h2.Relay
//	inbound    HTTP/1.1                       any       h1             h1 (pooled, to the application)
//	inbound    HTTP/2 marked l5d-orig-proto   meshed    h2             h1.OrigProtoIn (HTTP/1.1 to the application)
//	inbound    HTTP/2, h2c, gRPC              any       h2             h2.Relay
//	either     HTTP/1 Upgrade/WebSocket,      any       net/http       net/http's transport, or a tunnel
//	           CONNECT, Expect, HTTP/1.0                (hand-off)     (CONNECT), behind the same chain
//
// The engines fill the Exchange (method, authority, path, a header reader)
// and run the chain with the client engine as its terminal; the client
// engine records the response head (Exchange.Responded); the server engine
// relays the body and calls Exchange.Finish.
//
// # Around the request path
//
// balance (power of two choices over peak-EWMA latency, failure accrual),
// discovery (destination's answers, static endpoints), identity (the
// proxy's certificate), metrics (Linkerd's metric families), transport
// (dialing, original destination, connection metrics, the typed TLS
// status), admin (4191: /metrics, /ready, /live, /shutdown), config
// (LINKERD2_PROXY_* variables).
package proxy
