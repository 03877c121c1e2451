package httpproxy

import (
	"context"
	"net"
	"net/http"

	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/h1"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// fastConn connects the HTTP/1.1 fast path of one client connection to the
// proxy: the same endpoint choice, metrics and error answers as ServeHTTP,
// and the net/http server for what the fast path hands off.
type fastConn struct {
	p    *Proxy
	s    *Server
	info *ConnInfo

	// The l5d-dst-canonical field for the last authority (a canonical name
	// depends on the authority alone), reused while requests keep going to
	// the same service.
	canonicalFor  string
	canonicalLine []byte
}

// Route implements h1.Handler.
func (f *fastConn) Route(ctx context.Context, req *h1.Request) (h1.Route, error) {
	override := ""
	if f.p.ingress {
		override = req.Header(HeaderDstOverride)
	}
	dst := f.p.destination(req.Authority, override, f.info.OrigDst)
	ep, done, err := f.p.pick(ctx, dst)
	if err != nil {
		return h1.Route{}, err
	}
	rt := h1.Route{Endpoint: ep, Metrics: f.p.metricsFor(f.info, req.Authority, ep), Done: done, Upgrade: f.p.upgrade(ep)}
	if f.p.direction == transport.Outbound {
		if dst.Authority != f.canonicalFor || f.canonicalFor == "" {
			f.canonicalFor, f.canonicalLine = dst.Authority, nil
			if name := discovery.CanonicalName(f.p.resolver, dst); name != "" {
				f.canonicalLine = []byte(HeaderDstCanonical + ": " + name + "\r\n")
			}
		}
		rt.Header = f.canonicalLine
	}
	return rt, nil
}

// Fail implements h1.Handler with the answers and accounting of writeError.
func (f *fastConn) Fail(req *h1.Request, rt *h1.Route, err error) h1.ErrorResponse {
	p := f.p
	p.log.Debug("request failed", "direction", p.direction, "method", req.Method(), "authority", req.Authority, "target", req.Target(), "err", err)
	status := http.StatusServiceUnavailable // no endpoint
	var st *reqState
	if rt != nil {
		status = errorStatus(err)
		st = &reqState{start: req.Start, m: rt.Metrics, ep: rt.Endpoint, done: rt.Done, grpc: req.GRPC}
	}
	h := make(http.Header, 4)
	status, body := errorResponse(h, status, err, req.GRPC)
	p.accountError(st, status, h, err)
	return h1.ErrorResponse{Status: status, Header: h, Body: body}
}

// HandOff implements h1.Handler.
func (f *fastConn) HandOff(c net.Conn) error {
	if err := f.s.ServeConn(c, f.info); err != nil {
		_ = c.Close()
		return err
	}
	return nil
}

var _ h1.Handler = (*fastConn)(nil)
