// Package bench compares the latency, throughput, CPU cost and memory of the
// project's proxy pair with a direct connection and with nginx and haproxy
// pairs, in one invocation, on the same machine and in the same conditions.
//
// Each contender runs in its own pair of network namespaces ("pods", see
// internal/testnet): a client pod running the fortio load generator and a
// server pod running the fortio echo/ping server. Proxies are pinned to
// CPU 0, fortio to CPU 1.
//
// Three contenders repeat the pairs with mTLS (ECDSA P-256, TLS 1.3) between
// the proxies, like a mesh hop: linkerd-go-mtls (identities issued by the
// identity service in a meshed control pod; the harness checks in the client
// proxy's metrics that its connections to the server are mTLS), nginx-mtls
// (client certificates, HTTP/1.1 and gRPC over TLS) and haproxy-mtls
// (client certificates, HTTP/2 between the proxies). Ratios compare like
// with like: linkerd-go with nginx and haproxy, linkerd-go-mtls with the
// *-mtls pairs.
//
// Variants of our mTLS pair run only when -configs names them, and the
// report then prints what each costs per request against its base, in the
// same run (Δ CPU µs/req, Δ p50, Δ p99):
//
//   - linkerd-go-h1-mtls: LINKERD2_PROXY_OUTBOUND_H2_UPGRADE=false, HTTP/1.1
//     between the proxies on pooled connections, against linkerd-go-mtls,
//     where it goes over one HTTP/2 connection (l5d-orig-proto).
//
//   - linkerd-go-h2x4-mtls: LINKERD2_PROXY_OUTBOUND_H2_CONNECTIONS=4, up to
//     four HTTP/2 connections per peer, against linkerd-go-mtls (one).
//
//   - linkerd-go-lb3-mtls and linkerd-go-lb1-mtls: the client's proxy finds
//     the server through the destination service (a Service at a virtual
//     IP, in a local store) and balances over three endpoints, or one: three
//     fortio servers on different ports behind the one server proxy, so
//     both pairs have the same processes and the difference is balancing.
//
//   - linkerd-go-routes-mtls: linkerd-go-lb1-mtls whose Service has a
//     ServiceProfile of 10 routes, the matched one (the last) retryable:
//     route matching, route_* metrics and retry bookkeeping, against
//     linkerd-go-lb1-mtls. TestCallgrind counts both when -configs names
//     them (-configs linkerd-go-lb1-mtls,linkerd-go-routes-mtls).
//
//   - linkerd-go-tapon-mtls and linkerd-go-tapped-mtls: tap enabled on both
//     proxies with no tap attached, and a tap client attached to both that
//     takes every request (three events each), against linkerd-go-mtls.
//     TestCallgrind counts them too when -configs names them.
//
// For example:
//
//	go test ./bench -run TestCompare -v -args -full -configs direct,linkerd-go-mtls,linkerd-go-h1-mtls,nginx-mtls,haproxy-mtls -scenarios http-1000,http-4000
//	go test ./bench -run TestCompare -v -args -full -configs linkerd-go-lb1-mtls,linkerd-go-lb3-mtls -scenarios http-1000,http-4000
//
// The harness is a test so that CI exercises it:
//
//	go test ./bench                       # smoke run: ~2 s per run, 1 repetition (~95 s)
//	go test ./bench -run TestCompare -v -timeout 60m -args -full
//	go test ./bench -run TestCompare -v -args -full -duration 10s -reps 1 -out results.json
//
// The full mode (also BENCH_FULL=1) runs 3 interleaved repetitions of 30 s
// after a 3 s warm-up and reports medians. It needs root, iproute2,
// iptables, nginx, haproxy, taskset and fortio
// (go install fortio.org/fortio@v1.68.2).
package bench
