package httpproxy

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxyHTTP1 measures one proxy hop for a keep-alive HTTP/1.1 POST
// of 128 bytes echoed by the backend (the bench/ scenario, in-process). The
// harness serves HTTP/1 connections as inbound and outbound do: on the h1
// fast path.
func BenchmarkProxyHTTP1(b *testing.B) {
	benchProxy(b, false)
}

// BenchmarkProxyH2C is the same over prior-knowledge HTTP/2.
func BenchmarkProxyH2C(b *testing.B) {
	benchProxy(b, true)
}

func benchProxy(b *testing.B, h2 bool) {
	be := h2cBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	h := newHarness(b, be.Listener.Addr().String())
	c := h1Client(h.addr)
	if h2 {
		c = h2cClient(h.addr)
	}
	benchEcho(b, c)
}

// BenchmarkDirectHTTP1 is the baseline: the same client and backend, no proxy.
func BenchmarkDirectHTTP1(b *testing.B) {
	be := h2cBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	c := h1Client(be.Listener.Addr().String())
	benchEcho(b, c)
}

// BenchmarkMeshPairHTTP1 measures a mesh hop in-process: an HTTP/1.1
// keep-alive POST of 128 bytes through an outbound proxy, mTLS, an inbound
// proxy and an echoing HTTP/1.1 backend. "h2" carries the requests between
// the proxies over HTTP/2 (l5d-orig-proto), "h1" over pooled HTTP/1.1
// connections.
func BenchmarkMeshPairHTTP1(b *testing.B) {
	for _, upgrade := range []bool{false, true} {
		name := "h1"
		if upgrade {
			name = "h2"
		}
		b.Run(name, func(b *testing.B) {
			be := h1Backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
			m := newMeshPair(b, be.Listener.Addr().String(), upgrade)
			c := h1Client(m.addr)
			benchEcho(b, c)
		})
	}
}
