package localtoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestIssueValidate(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinKeyLen)
	otherKey := bytes.Repeat([]byte{8}, MinKeyLen)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	iss := &Issuer{Key: key, Now: fixedClock(t0)}
	tok, err := iss.Issue("web", "emojivoto", time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	body, sig, _ := strings.Cut(string(tok), ".")
	enc := base64.RawURLEncoding
	forge := func(claims string) []byte { // right MAC, arbitrary claims
		b := enc.EncodeToString([]byte(claims))
		return []byte(b + "." + enc.EncodeToString((&Issuer{Key: key}).mac(b)))
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name      string
		validator *Issuer
		token     []byte
		want      string // identity; empty means rejected
		notReject bool   // error must NOT wrap ErrTokenRejected
	}{
		{name: "valid", validator: iss, token: tok, want: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{name: "valid with trailing newline", validator: iss, token: append(bytes.Clone(tok), '\n'), want: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{name: "valid, other trust domain", validator: &Issuer{Key: key, Now: fixedClock(t0), ControllerNamespace: "mesh", TrustDomain: "example.org"},
			token: tok, want: "web.emojivoto.serviceaccount.identity.mesh.example.org"},
		{name: "valid just before expiry", validator: &Issuer{Key: key, Now: fixedClock(t0.Add(time.Hour - time.Second))}, token: tok, want: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{name: "expired", validator: &Issuer{Key: key, Now: fixedClock(t0.Add(time.Hour))}, token: tok},
		{name: "issued in the future", validator: &Issuer{Key: key, Now: fixedClock(t0.Add(-2 * time.Minute))}, token: tok},
		{name: "wrong key", validator: &Issuer{Key: otherKey, Now: fixedClock(t0)}, token: tok},
		{name: "tampered claims", validator: iss, token: []byte(flip(body, 5) + "." + sig)},
		{name: "tampered signature", validator: iss, token: []byte(body + "." + flip(sig, 3))},
		{name: "signature of another token", validator: iss, token: []byte(body + "." + sig[:len(sig)-4])},
		{name: "no signature", validator: iss, token: []byte(body)},
		{name: "three parts", validator: iss, token: []byte(string(tok) + ".x")},
		{name: "empty", validator: iss, token: nil},
		{name: "garbage", validator: iss, token: []byte("!!!.???")},
		{name: "too long", validator: iss, token: bytes.Repeat([]byte("a"), 5000)},
		{name: "signed but not JSON", validator: iss, token: forge("not json")},
		{name: "signed, wrong version", validator: iss, token: forge(`{"v":2,"sa":"web","ns":"emojivoto","iat":1767322000,"exp":1767329999}`)},
		{name: "signed, invalid service account", validator: iss, token: forge(`{"v":1,"sa":"Web","ns":"emojivoto","iat":1767322000,"exp":1767329999}`)},
		{name: "signed, no expiry", validator: iss, token: forge(`{"v":1,"sa":"web","ns":"emojivoto","iat":1767322000}`)},
		{name: "short key cannot check", validator: &Issuer{Key: key[:10], Now: fixedClock(t0)}, token: tok, notReject: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.validator.Validate(context.Background(), tt.token)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Validate = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = %q, want an error", got)
			}
			if rej := errors.Is(err, ctlidentity.ErrTokenRejected); rej == tt.notReject {
				t.Fatalf("error %v: wraps ErrTokenRejected = %v, want %v", err, rej, !tt.notReject)
			}
		})
	}
}

func TestIssueErrors(t *testing.T) {
	key := bytes.Repeat([]byte{1}, MinKeyLen)
	tests := []struct {
		name   string
		key    []byte
		sa, ns string
		ttl    time.Duration
	}{
		{"short key", key[:MinKeyLen-1], "web", "ns", time.Hour},
		{"bad service account", key, "Web", "ns", time.Hour},
		{"empty namespace", key, "web", "", time.Hour},
		{"zero ttl", key, "web", "ns", 0},
	}
	for _, tt := range tests {
		if _, err := (&Issuer{Key: tt.key}).Issue(tt.sa, tt.ns, tt.ttl); err == nil {
			t.Errorf("%s: Issue succeeded", tt.name)
		}
	}
}

func TestKeys(t *testing.T) {
	k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateKey()
	if len(k1) != MinKeyLen || bytes.Equal(k1, k2) {
		t.Fatalf("GenerateKey gave %d bytes / repeated keys", len(k1))
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(good, k1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, k1[:8], 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadKey(good); err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("LoadKey = %x, %v", got, err)
	}
	for _, p := range []string{short, filepath.Join(dir, "missing")} {
		if _, err := LoadKey(p); err == nil {
			t.Errorf("LoadKey(%s) succeeded", p)
		}
	}
	// A token made with a loaded key validates with a fresh Issuer holding
	// the same key: the format has no hidden state.
	loaded, _ := LoadKey(good)
	tok, err := (&Issuer{Key: k1}).Issue("a", "b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Issuer{Key: loaded}).Validate(context.Background(), tok); err != nil {
		t.Fatalf("Validate with loaded key: %v", err)
	}
}
