package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
)

// tapMode is how a variant of our mTLS pair uses tap.
type tapMode int

const (
	tapOff      tapMode = iota
	tapEnabled          // the tap API is on, nobody is attached
	tapAttached         // a tap client watches every request of both proxies
)

// tapTLSName is the tap service's identity, which the tap API serves.
var tapTLSName = identity.Name("tap", "linkerd-viz", meshControlNS, meshTrustDomain)

// attachTap starts a tap of every request (up to the tap's maximum rate) of
// the proxy in pod, whose identity is proxyID, reading its events until the
// test's cleanup.
func attachTap(t testing.TB, cp *identityPlane, pod *testnet.Pod, proxyID string) error {
	t.Helper()
	cfg, err := cp.tapTLS(proxyID)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(pod.Addr(4190), grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return pod.DialContext(ctx, "tcp", a) }))
	if err != nil {
		return fmt.Errorf("tap client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := tapv1.NewTapClient(conn).Observe(ctx, &tapv1.ObserveRequest{Limit: 10000})
	if err == nil {
		_, err = stream.Header() // the tap is in place
	}
	if err != nil {
		cancel()
		conn.Close()
		return fmt.Errorf("tap %s: %w", proxyID, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
	})
	return nil
}

// tapTLS is the tap service's client TLS, to reach the proxy serverID.
func (cp *identityPlane) tapTLS(serverID string) (*tls.Config, error) {
	key, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	der, err := pki.MakeCSR(key, tapTLSName)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	leaf, err := cp.issuer.SignCSR(csr, time.Hour, time.Minute)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(cp.anchorsPEM)) {
		return nil, fmt.Errorf("no trust anchors")
	}
	chain := [][]byte{leaf.Raw}
	for _, c := range cp.issuer.Chain() {
		chain = append(chain, c.Raw)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, ServerName: serverID, RootCAs: roots,
		Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key, Leaf: leaf}}}, nil
}
