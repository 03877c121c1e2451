package identity

import (
	"errors"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sa, ns, cns, td string
		want            string
	}{
		{"web", "emojivoto", "linkerd", "cluster.local", "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{"default", "default", "mesh", "example.org", "default.default.serviceaccount.identity.mesh.example.org"},
	}
	for _, tt := range tests {
		if got := Name(tt.sa, tt.ns, tt.cns, tt.td); got != tt.want {
			t.Errorf("Name(%q, %q, %q, %q) = %q, want %q", tt.sa, tt.ns, tt.cns, tt.td, got, tt.want)
		}
	}
	if got, want := IssuerName("linkerd", "cluster.local"), "identity.linkerd.cluster.local"; got != want {
		t.Errorf("IssuerName = %q, want %q", got, want)
	}
	if got, want := TrustAnchorName("linkerd", "cluster.local"), "root.linkerd.cluster.local"; got != want {
		t.Errorf("TrustAnchorName = %q, want %q", got, want)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 64)
	tests := []struct {
		name    string
		cns, td string
		wantSA  string
		wantNS  string
		wantErr bool
	}{
		{name: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantSA: "web", wantNS: "emojivoto"},
		{name: "a-1.b2.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantSA: "a-1", wantNS: "b2"},
		{name: "web.emojivoto.serviceaccount.identity.mesh.example.org", cns: "mesh", td: "example.org", wantSA: "web", wantNS: "emojivoto"},
		// Wrong control-plane namespace or trust domain.
		{name: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "other", td: "cluster.local", wantErr: true},
		{name: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "example.org", wantErr: true},
		// Missing or extra parts.
		{name: "web.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "a.web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: ".emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "web..serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "", cns: "linkerd", td: "cluster.local", wantErr: true},
		// Label rules.
		{name: "Web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "-web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "web-.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "we_b.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: long + ".ns.serviceaccount.identity.linkerd.cluster.local", cns: "linkerd", td: "cluster.local", wantErr: true},
		{name: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local", cns: "", td: "cluster.local", wantErr: true},
		{name: "web.emojivoto.serviceaccount.identity.linkerd.", cns: "linkerd", td: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sa, ns, err := Parse(tt.name, tt.cns, tt.td)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse = (%q, %q, nil), want error", sa, ns)
				}
				if !errors.Is(err, ErrInvalidName) {
					t.Fatalf("error %v does not wrap ErrInvalidName", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if sa != tt.wantSA || ns != tt.wantNS {
				t.Fatalf("Parse = (%q, %q), want (%q, %q)", sa, ns, tt.wantSA, tt.wantNS)
			}
			if back := Name(sa, ns, tt.cns, tt.td); back != tt.name {
				t.Fatalf("Name(Parse(x)) = %q, want %q", back, tt.name)
			}
		})
	}
}

func TestParseTooLong(t *testing.T) {
	t.Parallel()
	// Every label is valid but the whole name exceeds 253 characters.
	l := strings.Repeat("a", 63)
	td := l + "." + l
	name := Name(l, l, "linkerd", td)
	if _, _, err := Parse(name, "linkerd", td); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Parse(%d chars) error = %v, want ErrInvalidName", len(name), err)
	}
}

func TestValidateLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"a", true},
		{"0", true},
		{"a-b", true},
		{"a--b", true},
		{strings.Repeat("x", 63), true},
		{strings.Repeat("x", 64), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{"A", false},
		{"a.b", false},
		{"a b", false},
		{"ä", false},
	}
	for _, tt := range tests {
		err := ValidateLabel(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateLabel(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestValidateDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"cluster.local", true},
		{"local", true},
		{"a.b.c", true},
		{"", false},
		{".local", false},
		{"cluster.", false},
		{"cluster..local", false},
		{"Cluster.local", false},
	}
	for _, tt := range tests {
		err := ValidateDomain(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateDomain(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
