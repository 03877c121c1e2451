package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	anchorCN = "root.linkerd.cluster.local"
	issuerCN = "identity.linkerd.cluster.local"
	leafName = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
)

func newAnchor(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(anchorCN, DefaultAnchorLifetime)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func newIssuer(t *testing.T, anchor *CA) *CA {
	t.Helper()
	iss, err := anchor.NewIssuer(issuerCN, DefaultIssuerLifetime)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func newLeaf(t *testing.T, iss *CA, name string, lifetime time.Duration) *x509.Certificate {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := MakeCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := iss.SignCSR(csr, lifetime, DefaultClockSkew)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	return leaf
}

// rawCert creates a certificate outside the package's constructors, for keys
// and shapes NewCA refuses to make.
func rawCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, pub any, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(42)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caTmpl(cn string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
}

func within(t *testing.T, what string, got, want time.Time, slack time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -slack || d > slack {
		t.Errorf("%s = %s, want %s ± %s", what, got, want, slack)
	}
}

func TestGeneratedHierarchy(t *testing.T) {
	t.Parallel()
	start := time.Now()
	anchor := newAnchor(t)
	iss := newIssuer(t, anchor)

	tests := []struct {
		name       string
		cert       *x509.Certificate
		cn         string
		lifetime   time.Duration
		maxPathLen int
		pathZero   bool
	}{
		{"anchor", anchor.Cert, anchorCN, DefaultAnchorLifetime, -1, false},
		{"issuer", iss.Cert, issuerCN, DefaultIssuerLifetime, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cert
			if c.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tt.cn)
			}
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both", c.IsCA, c.BasicConstraintsValid)
			}
			if c.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("KeyUsage %v lacks CertSign", c.KeyUsage)
			}
			if c.MaxPathLen != tt.maxPathLen || c.MaxPathLenZero != tt.pathZero {
				t.Errorf("MaxPathLen=%d MaxPathLenZero=%v, want %d %v", c.MaxPathLen, c.MaxPathLenZero, tt.maxPathLen, tt.pathZero)
			}
			if !IsP256(c.PublicKey) || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("key %T / signature %s, want ECDSA P-256 / SHA256", c.PublicKey, c.SignatureAlgorithm)
			}
			within(t, "NotAfter", c.NotAfter, start.Add(tt.lifetime), 5*time.Second)
			if len(c.SubjectKeyId) == 0 {
				t.Error("no SubjectKeyId")
			}
		})
	}
	if iss.Cert.CheckSignatureFrom(anchor.Cert) != nil {
		t.Error("issuer not signed by anchor")
	}
	if len(iss.Intermediates) != 0 {
		t.Errorf("issuer of a root has %d intermediates, want 0", len(iss.Intermediates))
	}
	if err := VerifyIssuer(iss, []*x509.Certificate{anchor.Cert}); err != nil {
		t.Errorf("VerifyIssuer: %v", err)
	}
}

func TestPEMRoundTrip(t *testing.T) {
	t.Parallel()
	anchor := newAnchor(t)
	iss := newIssuer(t, anchor)

	bundle := EncodeCertificatesPEM(iss.Cert, anchor.Cert)
	certs, err := DecodeCertificatesPEM(bundle)
	if err != nil {
		t.Fatalf("DecodeCertificatesPEM: %v", err)
	}
	if len(certs) != 2 || !SameCertificate(certs[0], iss.Cert) || !SameCertificate(certs[1], anchor.Cert) {
		t.Fatalf("bundle round trip gave %d certs in the wrong order", len(certs))
	}
	if _, err := DecodeCertificatePEM(bundle); err == nil {
		t.Error("DecodeCertificatePEM accepted a bundle of two")
	}
	one, err := DecodeCertificatePEM(EncodeCertificatesPEM(anchor.Cert))
	if err != nil || !SameCertificate(one, anchor.Cert) {
		t.Errorf("DecodeCertificatePEM = %v, %v", one, err)
	}

	keyPEM, err := EncodePrivateKeyPEM(iss.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(keyPEM), "BEGIN PRIVATE KEY") {
		t.Errorf("key PEM is not PKCS#8:\n%s", keyPEM)
	}
	key, err := DecodePrivateKeyPEM(keyPEM)
	if err != nil || !key.Equal(iss.Key) {
		t.Fatalf("DecodePrivateKeyPEM = %v, %v", key, err)
	}
	der, err := MarshalPrivateKeyDER(iss.Key)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParsePrivateKeyDER(der); err != nil || !k.Equal(iss.Key) {
		t.Fatalf("ParsePrivateKeyDER = %v, %v", k, err)
	}

	loaded, err := LoadIssuer(EncodeCertificatesPEM(iss.Cert), keyPEM)
	if err != nil {
		t.Fatalf("LoadIssuer: %v", err)
	}
	if !SameCertificate(loaded.Cert, iss.Cert) || !loaded.Key.Equal(iss.Key) {
		t.Fatal("LoadIssuer returned different material")
	}
	// The loaded issuer can sign, and its leaves verify.
	leaf := newLeaf(t, loaded, leafName, time.Hour)
	if err := VerifyChain(leaf, loaded.Chain(), []*x509.Certificate{anchor.Cert}); err != nil {
		t.Fatalf("leaf of loaded issuer: %v", err)
	}
}

func TestDecodePrivateKeyPEM(t *testing.T) {
	t.Parallel()
	p256, _ := GenerateKey()
	sec1, _ := x509.MarshalECPrivateKey(p256)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	params := block("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"sec1", block("EC PRIVATE KEY", sec1), true},
		{"openssl ecparam output", append(params, block("EC PRIVATE KEY", sec1)...), true},
		{"p384", block("PRIVATE KEY", p384der), false},
		{"rsa", block("PRIVATE KEY", rsaDER), false},
		{"certificate", block("CERTIFICATE", []byte{1, 2, 3}), false},
		{"garbage in block", block("PRIVATE KEY", []byte{1, 2, 3}), false},
		{"no PEM", []byte("hello"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DecodePrivateKeyPEM(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("DecodePrivateKeyPEM: %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !k.Equal(p256) {
				t.Fatal("decoded a different key")
			}
		})
	}
}

func TestDecodeCertificatesPEMErrors(t *testing.T) {
	t.Parallel()
	anchor := newAnchor(t)
	keyPEM, _ := EncodePrivateKeyPEM(anchor.Key)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not PEM", []byte("not a certificate")},
		{"key block", keyPEM},
		{"cert then key", append(EncodeCertificatesPEM(anchor.Cert), keyPEM...)},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x01}})},
	}
	for _, tt := range tests {
		if _, err := DecodeCertificatesPEM(tt.in); err == nil {
			t.Errorf("%s: DecodeCertificatesPEM succeeded", tt.name)
		}
	}
}

func TestLoadIssuer(t *testing.T) {
	t.Parallel()
	anchor := newAnchor(t)
	iss := newIssuer(t, anchor)
	// MaxPathLen 0 does not stop creating a CA below the issuer, but
	// leaves of that CA must not verify.
	sub, err := iss.NewIssuerWithValidity("sub", ValidFor(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	subLeaf := newLeaf(t, sub, leafName, time.Minute)
	var invalid x509.CertificateInvalidError
	err = VerifyChain(subLeaf, sub.Chain(), []*x509.Certificate{anchor.Cert})
	if !errors.As(err, &invalid) || invalid.Reason != x509.TooManyIntermediates {
		t.Errorf("leaf below a CA below a MaxPathLen=0 issuer: %v, want TooManyIntermediates", err)
	}
	leaf := newLeaf(t, iss, leafName, time.Hour)
	otherKey, _ := GenerateKey()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Cert := rawCert(t, caTmpl("p384", time.Now(), time.Now().Add(time.Hour)), nil, &p384.PublicKey, p384)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	noCertSign := caTmpl("no-certsign", time.Now(), time.Now().Add(time.Hour))
	noCertSign.KeyUsage = x509.KeyUsageDigitalSignature
	noCertSignCert := rawCert(t, noCertSign, nil, &otherKey.PublicKey, otherKey)

	pemKey := func(k *ecdsa.PrivateKey) []byte { b, _ := EncodePrivateKeyPEM(k); return b }
	tests := []struct {
		name      string
		cert, key []byte
		wantErr   string
		wantInter int
	}{
		{"ok", EncodeCertificatesPEM(iss.Cert), pemKey(iss.Key), "", 0},
		{"ok with chain", EncodeCertificatesPEM(iss.Cert, anchor.Cert), pemKey(iss.Key), "", 1},
		{"key mismatch", EncodeCertificatesPEM(iss.Cert), pemKey(otherKey), "does not match", 0},
		{"leaf cert", EncodeCertificatesPEM(leaf), pemKey(iss.Key), "not a CA", 0},
		{"no certSign usage", EncodeCertificatesPEM(noCertSignCert), pemKey(otherKey), "certSign", 0},
		{"p384", EncodeCertificatesPEM(p384Cert), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384der}), "P-256", 0},
		{"no cert", nil, pemKey(iss.Key), "issuer certificate", 0},
		{"no key", EncodeCertificatesPEM(iss.Cert), nil, "issuer key", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := LoadIssuer(tt.cert, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadIssuer error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadIssuer: %v", err)
			}
			if len(ca.Intermediates) != tt.wantInter {
				t.Fatalf("%d intermediates, want %d", len(ca.Intermediates), tt.wantInter)
			}
		})
	}
}

func TestSignCSR(t *testing.T) {
	t.Parallel()
	anchor := newAnchor(t)
	iss := newIssuer(t, anchor)
	now := time.Now()
	shortIss, err := anchor.NewIssuerWithValidity(issuerCN, Validity{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expiredIss, err := anchor.NewIssuerWithValidity(issuerCN, Validity{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	key, _ := GenerateKey()
	csrDER, err := MakeCSR(key, leafName)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != leafName || !slices.Equal(csr.DNSNames, []string{leafName}) {
		t.Fatalf("MakeCSR: CN %q SANs %v", csr.Subject.CommonName, csr.DNSNames)
	}
	if len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) != 0 {
		t.Fatal("MakeCSR: unexpected SANs")
	}
	tampered := slices.Clone(csrDER)
	tampered[len(tampered)-1] ^= 0xff
	badCSR, err := x509.ParseCertificateRequest(tampered)
	if err != nil {
		t.Fatalf("tampered CSR no longer parses (test needs a parseable one): %v", err)
	}
	ipCSRDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		DNSNames: []string{leafName}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, key)
	ipCSR, _ := x509.ParseCertificateRequest(ipCSRDER)

	tests := []struct {
		name         string
		ca           *CA
		csr          *x509.CertificateRequest
		lifetime     time.Duration
		skew         time.Duration
		wantErr      bool
		wantNotAfter time.Time
	}{
		{name: "24h", ca: iss, csr: csr, lifetime: 24 * time.Hour, skew: 20 * time.Second, wantNotAfter: now.Add(24 * time.Hour)},
		{name: "no skew", ca: iss, csr: csr, lifetime: time.Hour, wantNotAfter: now.Add(time.Hour)},
		{name: "capped at issuer expiry", ca: shortIss, csr: csr, lifetime: 24 * time.Hour, skew: time.Minute, wantNotAfter: shortIss.Cert.NotAfter},
		{name: "SANs copied verbatim", ca: iss, csr: ipCSR, lifetime: time.Hour, wantNotAfter: now.Add(time.Hour)},
		{name: "expired issuer", ca: expiredIss, csr: csr, lifetime: time.Hour, wantErr: true},
		{name: "bad CSR signature", ca: iss, csr: badCSR, lifetime: time.Hour, wantErr: true},
		{name: "zero lifetime", ca: iss, csr: csr, lifetime: 0, wantErr: true},
		{name: "negative skew", ca: iss, csr: csr, lifetime: time.Hour, skew: -time.Second, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := tt.ca.SignCSR(tt.csr, tt.lifetime, tt.skew)
			if tt.wantErr {
				if err == nil {
					t.Fatal("SignCSR succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			within(t, "NotBefore", leaf.NotBefore, now.Add(-tt.skew), 3*time.Second)
			within(t, "NotAfter", leaf.NotAfter, tt.wantNotAfter, 3*time.Second)
			if !slices.Equal(leaf.DNSNames, tt.csr.DNSNames) || len(leaf.IPAddresses) != len(tt.csr.IPAddresses) {
				t.Errorf("SANs %v %v, want %v %v", leaf.DNSNames, leaf.IPAddresses, tt.csr.DNSNames, tt.csr.IPAddresses)
			}
			if leaf.IsCA {
				t.Error("leaf is a CA")
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
			}
			if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage = %v", leaf.KeyUsage)
			}
			if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
				t.Error("leaf has a different public key")
			}
			if err := leaf.CheckSignatureFrom(tt.ca.Cert); err != nil {
				t.Errorf("leaf not signed by the CA: %v", err)
			}
		})
	}
}

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	anchor := newAnchor(t)
	iss := newIssuer(t, anchor)
	foreign := newAnchor(t)
	foreignIss := newIssuer(t, foreign)
	now := time.Now()
	expiredIss, err := anchor.NewIssuerWithValidity(issuerCN, Validity{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	futureIss, err := anchor.NewIssuerWithValidity(issuerCN, Validity{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	leaf := newLeaf(t, iss, leafName, time.Hour)
	anchors := []*x509.Certificate{anchor.Cert}

	tests := []struct {
		name          string
		leaf          *x509.Certificate
		intermediates []*x509.Certificate
		anchors       []*x509.Certificate
		at            time.Time
		ok            bool
	}{
		{"leaf via issuer", leaf, iss.Chain(), anchors, now, true},
		{"leaf, anchor among several", leaf, iss.Chain(), []*x509.Certificate{foreign.Cert, anchor.Cert}, now, true},
		{"issuer alone", iss.Cert, nil, anchors, now, true},
		{"leaf without intermediates", leaf, nil, anchors, now, false},
		{"leaf against foreign anchor", leaf, iss.Chain(), []*x509.Certificate{foreign.Cert}, now, false},
		{"foreign issuer", foreignIss.Cert, nil, anchors, now, false},
		{"leaf via foreign issuer", leaf, foreignIss.Chain(), anchors, now, false},
		{"expired leaf", leaf, iss.Chain(), anchors, now.Add(2 * time.Hour), false},
		{"leaf not yet valid", leaf, iss.Chain(), anchors, now.Add(-time.Hour), false},
		{"expired issuer", expiredIss.Cert, nil, anchors, now, false},
		{"issuer not yet valid", futureIss.Cert, nil, anchors, now, false},
		{"no anchors", leaf, iss.Chain(), nil, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyChainAt(tt.leaf, tt.intermediates, tt.anchors, tt.at)
			if (err == nil) != tt.ok {
				t.Fatalf("VerifyChainAt: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestIssuerBelowIntermediate(t *testing.T) {
	t.Parallel()
	// anchor -> mid (unlimited) -> issuer (path len 0) -> leaf
	anchor := newAnchor(t)
	mid, err := NewCA("mid", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Re-sign mid under the anchor so it is an intermediate.
	mid.Cert = rawCert(t, caTmpl("mid", time.Now().Add(-time.Minute), time.Now().Add(time.Hour)), anchor.Cert, &mid.Key.PublicKey, anchor.Key)
	iss, err := mid.NewIssuer(issuerCN, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.Intermediates) != 1 || !SameCertificate(iss.Intermediates[0], mid.Cert) {
		t.Fatalf("issuer intermediates = %d, want [mid]", len(iss.Intermediates))
	}
	leaf := newLeaf(t, iss, leafName, time.Hour)
	anchors := []*x509.Certificate{anchor.Cert}
	if err := VerifyChain(leaf, iss.Chain(), anchors); err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	results := Check(anchors, iss.Chain(), CheckOptions{MinValidity: time.Minute})
	if w := Worst(results); w != StatusOK {
		t.Fatalf("Check: %v", results)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	now := time.Now()
	day := 24 * time.Hour
	mkAnchor := func(notBefore, notAfter time.Time) *CA {
		ca, err := NewCAWithValidity(anchorCN, Validity{NotBefore: notBefore, NotAfter: notAfter})
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	anchor := mkAnchor(now.Add(-day), now.Add(3650*day))
	mkIssuer := func(a *CA, notBefore, notAfter time.Time) *CA {
		iss, err := a.NewIssuerWithValidity(issuerCN, Validity{NotBefore: notBefore, NotAfter: notAfter})
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	goodIss := mkIssuer(anchor, now.Add(-day), now.Add(365*day))
	shortAnchor := mkAnchor(now.Add(-day), now.Add(30*day))
	underShort := mkIssuer(shortAnchor, now.Add(-day), now.Add(20*day))
	foreignIss := mkIssuer(mkAnchor(now.Add(-day), now.Add(3650*day)), now.Add(-day), now.Add(365*day))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaAnchor := rawCert(t, caTmpl("rsa", now.Add(-day), now.Add(3650*day)), nil, &rsaKey.PublicKey, rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Iss := rawCert(t, caTmpl(issuerCN, now.Add(-day), now.Add(365*day)), anchor.Cert, &p384.PublicKey, anchor.Key)

	type want map[string]Status // checks not listed must be OK
	tests := []struct {
		name    string
		anchors []*x509.Certificate
		issuer  []*x509.Certificate
		opts    CheckOptions
		want    want
	}{
		{name: "healthy", anchors: []*x509.Certificate{anchor.Cert}, issuer: goodIss.Chain(), want: want{}},
		{name: "issuer expires in 30 days", anchors: []*x509.Certificate{anchor.Cert},
			issuer: mkIssuer(anchor, now.Add(-day), now.Add(30*day)).Chain(),
			want:   want{CheckIssuerMinValidity: StatusWarning}},
		{name: "issuer expires in 61 days", anchors: []*x509.Certificate{anchor.Cert},
			issuer: mkIssuer(anchor, now.Add(-day), now.Add(61*day)).Chain(), want: want{}},
		{name: "custom minimum", anchors: []*x509.Certificate{anchor.Cert},
			issuer: mkIssuer(anchor, now.Add(-day), now.Add(30*day)).Chain(),
			opts:   CheckOptions{MinValidity: 7 * day}, want: want{}},
		{name: "checked in the future", anchors: []*x509.Certificate{anchor.Cert}, issuer: goodIss.Chain(),
			opts: CheckOptions{Now: now.Add(340 * day)}, want: want{CheckIssuerMinValidity: StatusWarning}},
		{name: "anchor expires in 30 days", anchors: []*x509.Certificate{shortAnchor.Cert}, issuer: underShort.Chain(),
			want: want{CheckAnchorsMinValidity: StatusWarning, CheckIssuerMinValidity: StatusWarning}},
		{name: "one of two anchors expiring", anchors: []*x509.Certificate{anchor.Cert, shortAnchor.Cert}, issuer: goodIss.Chain(),
			want: want{CheckAnchorsMinValidity: StatusWarning}},
		{name: "expired issuer", anchors: []*x509.Certificate{anchor.Cert},
			issuer: mkIssuer(anchor, now.Add(-10*day), now.Add(-day)).Chain(),
			want:   want{CheckIssuerValidity: StatusError, CheckIssuerMinValidity: StatusWarning}},
		{name: "issuer not yet valid", anchors: []*x509.Certificate{anchor.Cert},
			issuer: mkIssuer(anchor, now.Add(day), now.Add(365*day)).Chain(),
			want:   want{CheckIssuerValidity: StatusError}},
		{name: "expired anchor", anchors: []*x509.Certificate{mkAnchor(now.Add(-10*day), now.Add(-day)).Cert}, issuer: goodIss.Chain(),
			want: want{CheckAnchorsValidity: StatusError, CheckAnchorsMinValidity: StatusWarning, CheckIssuerSignedByAnchor: StatusError}},
		{name: "foreign issuer", anchors: []*x509.Certificate{anchor.Cert}, issuer: foreignIss.Chain(),
			want: want{CheckIssuerSignedByAnchor: StatusError}},
		{name: "rsa anchor", anchors: []*x509.Certificate{rsaAnchor, anchor.Cert}, issuer: goodIss.Chain(),
			want: want{CheckAnchorsAlgorithm: StatusError}},
		{name: "p384 issuer", anchors: []*x509.Certificate{anchor.Cert}, issuer: []*x509.Certificate{p384Iss},
			want: want{CheckIssuerAlgorithm: StatusError}},
		{name: "extra certificate after issuer", anchors: []*x509.Certificate{anchor.Cert}, issuer: []*x509.Certificate{goodIss.Cert, foreignIss.Cert},
			want: want{}},
		{name: "issuer chain does not link", anchors: []*x509.Certificate{anchor.Cert}, issuer: []*x509.Certificate{foreignIss.Cert, goodIss.Cert},
			want: want{CheckIssuerSignedByAnchor: StatusError}},
		{name: "no anchors", anchors: nil, issuer: goodIss.Chain(),
			want: want{CheckAnchorsAlgorithm: StatusError, CheckAnchorsValidity: StatusError, CheckAnchorsMinValidity: StatusError, CheckIssuerSignedByAnchor: StatusError}},
		{name: "no issuer", anchors: []*x509.Certificate{anchor.Cert}, issuer: nil,
			want: want{CheckIssuerAlgorithm: StatusError, CheckIssuerValidity: StatusError, CheckIssuerMinValidity: StatusError, CheckIssuerSignedByAnchor: StatusError}},
	}
	order := []string{CheckAnchorsAlgorithm, CheckAnchorsValidity, CheckAnchorsMinValidity, CheckIssuerAlgorithm, CheckIssuerValidity, CheckIssuerMinValidity, CheckIssuerSignedByAnchor}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results := Check(tt.anchors, tt.issuer, tt.opts)
			if len(results) != len(order) {
				t.Fatalf("%d results, want %d", len(results), len(order))
			}
			worst := StatusOK
			for i, r := range results {
				if r.ID != order[i] {
					t.Errorf("result %d is %q, want %q", i, r.ID, order[i])
				}
				if r.Description == "" {
					t.Errorf("%s: no description", r.ID)
				}
				w := tt.want[r.ID]
				worst = max(worst, w)
				if r.Status != w {
					t.Errorf("%s = %s (%s), want %s", r.ID, r.Status, r.Message, w)
				}
				if (r.Status == StatusOK) != (r.Message == "") {
					t.Errorf("%s: status %s with message %q", r.ID, r.Status, r.Message)
				}
			}
			if got := Worst(results); got != worst {
				t.Errorf("Worst = %s, want %s", got, worst)
			}
		})
	}
}

func TestCheckMessagesNameTheCertificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	anchor := newAnchor(t)
	iss, err := anchor.NewIssuerWithValidity(issuerCN, Validity{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Check([]*x509.Certificate{anchor.Cert}, iss.Chain(), CheckOptions{}) {
		if r.ID == CheckIssuerMinValidity {
			if r.Status != StatusWarning || !strings.Contains(r.Message, issuerCN) || !strings.Contains(r.Description, "60 days") {
				t.Fatalf("%+v", r)
			}
			return
		}
	}
	t.Fatal("no issuer-min-validity result")
}
