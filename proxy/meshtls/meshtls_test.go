package meshtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "anchor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// src is a Source with a certificate for name signed by ca (trusting trust).
type src struct {
	name  string
	cert  *tls.Certificate
	roots *x509.CertPool
}

func (s *src) Name() string                  { return s.name }
func (s *src) Certificate() *tls.Certificate { return s.cert }
func (s *src) Roots() *x509.CertPool         { return s.roots }

func (ca *testCA) issue(t *testing.T, name string, trust *testCA) *src {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &src{name: name, cert: &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots: trust.pool}
}

// handshake runs a client and a server over loopback and returns the
// server's view of the client identity and both errors.
func handshake(t *testing.T, client, server *Configs, serverID string) (clientID string, cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := tls.Server(b, server.Server())
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		if serr = s.Handshake(); serr == nil {
			clientID = PeerIdentity(s.ConnectionState())
			_, serr = s.Read(make([]byte, 1))
		}
		s.Close()
	}()
	c := tls.Client(a, client.Client(serverID, ""))
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if cerr = c.Handshake(); cerr == nil {
		_, cerr = c.Write([]byte{1})
	}
	c.Close()
	<-done
	return clientID, cerr, serr
}

func TestMutualTLS(t *testing.T) {
	ca, foreign := newCA(t), newCA(t)
	web := New(ca.issue(t, "web.demo.serviceaccount.identity.linkerd.cluster.local", ca))
	db := New(ca.issue(t, "db.demo.serviceaccount.identity.linkerd.cluster.local", ca))
	impostor := New(foreign.issue(t, "db.demo.serviceaccount.identity.linkerd.cluster.local", foreign))
	anon := New(&src{name: "", roots: ca.pool})

	id, cerr, serr := handshake(t, web, db, "db.demo.serviceaccount.identity.linkerd.cluster.local")
	if cerr != nil || serr != nil {
		t.Fatalf("meshed handshake: client %v, server %v", cerr, serr)
	}
	if id != "web.demo.serviceaccount.identity.linkerd.cluster.local" {
		t.Fatalf("server saw client identity %q", id)
	}

	// The peer proves another identity than the one discovery promised.
	if _, cerr, _ := handshake(t, web, db, "api.demo.serviceaccount.identity.linkerd.cluster.local"); cerr == nil {
		t.Fatal("client accepted a peer with the wrong identity")
	} else if !strings.Contains(cerr.Error(), "api.demo") {
		t.Errorf("wrong-identity error does not name the expected identity: %v", cerr)
	}

	// A peer whose certificate is not from our trust anchors.
	_, cerr, _ = handshake(t, web, impostor, "db.demo.serviceaccount.identity.linkerd.cluster.local")
	var uerr x509.UnknownAuthorityError
	if !errors.As(cerr, &uerr) {
		t.Fatalf("foreign CA: %v, want unknown authority", cerr)
	}

	// A client with a foreign certificate is refused by the server.
	if _, _, serr := handshake(t, impostor, db, "db.demo.serviceaccount.identity.linkerd.cluster.local"); serr == nil {
		t.Fatal("server accepted a client certificate from a foreign CA")
	}

	// A client with no identity yet fails before sending anything.
	if _, cerr, _ := handshake(t, anon, db, "db.demo.serviceaccount.identity.linkerd.cluster.local"); !errors.Is(cerr, ErrNoCertificate) && cerr == nil {
		t.Fatal("client without a certificate completed mTLS")
	}
}

func TestHeader(t *testing.T) {
	for _, h := range []Header{{Port: 3306}, {Port: 8080, Name: "web.demo.svc.cluster.local:8080"}} {
		var buf bytes.Buffer
		if err := WriteHeader(&buf, h); err != nil {
			t.Fatal(err)
		}
		got, err := ReadHeader(&buf)
		if err != nil || got != h {
			t.Fatalf("round trip %+v: %+v, %v", h, got, err)
		}
	}
	for _, bad := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n"),
		{'L', '5', 'D', 'T', 2, 0, 80, 0, 0},
		{'L', '5', 'D', 'T', 1, 0, 0, 0, 0},
		{'L', '5', 'D', 'T', 1, 0, 80, 0xff, 0xff},
		{'L', '5', 'D'},
	} {
		if _, err := ReadHeader(bytes.NewReader(bad)); err == nil {
			t.Errorf("ReadHeader(%q): want error", bad)
		}
	}
	if err := WriteHeader(&bytes.Buffer{}, Header{Port: 1, Name: strings.Repeat("x", MaxHeaderName+1)}); err == nil {
		t.Error("oversized name accepted")
	}
}
