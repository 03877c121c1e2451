package cmd

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// certificateText renders a certificate for people, in the layout of
// `openssl x509 -text` (the fields a mesh certificate has).
func certificateText(c *x509.Certificate) string {
	var b strings.Builder
	line := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat(" ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	line(0, "Certificate:")
	line(4, "Data:")
	line(8, "Version: %d (%#x)", c.Version, c.Version-1)
	line(8, "Serial Number: %s", hexColons(c.SerialNumber.Bytes()))
	line(4, "Signature Algorithm: %s", c.SignatureAlgorithm)
	line(8, "Issuer: %s", c.Issuer)
	line(8, "Validity")
	line(12, "Not Before: %s", c.NotBefore.UTC().Format(time.RFC1123))
	line(12, "Not After : %s", c.NotAfter.UTC().Format(time.RFC1123))
	line(8, "Subject: %s", c.Subject)
	line(8, "Subject Public Key Info:")
	line(12, "Public Key Algorithm: %s", publicKeyText(c))
	if exts := extensionLines(c); len(exts) > 0 {
		line(8, "X509v3 extensions:")
		for _, e := range exts {
			line(12, "%s", e[0])
			line(16, "%s", e[1])
		}
	}
	line(4, "Signature Algorithm: %s", c.SignatureAlgorithm)
	for _, l := range wrapHex(c.Signature, 18) {
		line(8, "%s", l)
	}
	return b.String()
}

// publicKeyText names the key's algorithm and size.
func publicKeyText(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ECDSA (%s, %d bit)", k.Curve.Params().Name, k.Curve.Params().BitSize)
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA (%d bit)", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return c.PublicKeyAlgorithm.String()
}

// extensionLines are the certificate's extensions: name and value.
func extensionLines(c *x509.Certificate) [][2]string {
	var out [][2]string
	if c.KeyUsage != 0 {
		var u []string
		for _, k := range []struct {
			bit  x509.KeyUsage
			name string
		}{
			{x509.KeyUsageDigitalSignature, "Digital Signature"},
			{x509.KeyUsageContentCommitment, "Non Repudiation"},
			{x509.KeyUsageKeyEncipherment, "Key Encipherment"},
			{x509.KeyUsageDataEncipherment, "Data Encipherment"},
			{x509.KeyUsageKeyAgreement, "Key Agreement"},
			{x509.KeyUsageCertSign, "Certificate Sign"},
			{x509.KeyUsageCRLSign, "CRL Sign"},
		} {
			if c.KeyUsage&k.bit != 0 {
				u = append(u, k.name)
			}
		}
		out = append(out, [2]string{"X509v3 Key Usage: critical", strings.Join(u, ", ")})
	}
	if len(c.ExtKeyUsage) > 0 {
		var u []string
		for _, e := range c.ExtKeyUsage {
			switch e {
			case x509.ExtKeyUsageServerAuth:
				u = append(u, "TLS Web Server Authentication")
			case x509.ExtKeyUsageClientAuth:
				u = append(u, "TLS Web Client Authentication")
			default:
				u = append(u, fmt.Sprintf("usage %d", e))
			}
		}
		out = append(out, [2]string{"X509v3 Extended Key Usage:", strings.Join(u, ", ")})
	}
	if c.BasicConstraintsValid {
		v := "CA:FALSE"
		if c.IsCA {
			v = "CA:TRUE"
			if c.MaxPathLen > 0 || c.MaxPathLenZero {
				v += fmt.Sprintf(", pathlen:%d", c.MaxPathLen)
			}
		}
		out = append(out, [2]string{"X509v3 Basic Constraints: critical", v})
	}
	if len(c.SubjectKeyId) > 0 {
		out = append(out, [2]string{"X509v3 Subject Key Identifier:", hexColons(c.SubjectKeyId)})
	}
	if len(c.AuthorityKeyId) > 0 {
		out = append(out, [2]string{"X509v3 Authority Key Identifier:", hexColons(c.AuthorityKeyId)})
	}
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP Address:"+ip.String())
	}
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	if len(sans) > 0 {
		out = append(out, [2]string{"X509v3 Subject Alternative Name:", strings.Join(sans, ", ")})
	}
	return out
}

// hexColons writes bytes as "0a:1b:...".
func hexColons(b []byte) string {
	if len(b) == 0 {
		return "00"
	}
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, ":")
}

// wrapHex writes bytes as colon-separated hex, perLine bytes a line.
func wrapHex(b []byte, perLine int) []string {
	var lines []string
	for len(b) > 0 {
		n := min(perLine, len(b))
		l := hexColons(b[:n])
		if n < len(b) {
			l += ":"
		}
		lines = append(lines, l)
		b = b[n:]
	}
	return lines
}
