package config

import (
	"slices"
	"testing"
)

func TestParsePortSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     string // canonical String()
		contains []uint16
		excludes []uint16
	}{
		{in: "", want: "", excludes: []uint16{0, 1, 80, 65535}},
		{in: " , ", want: ""},
		{in: "80", want: "80", contains: []uint16{80}, excludes: []uint16{79, 81}},
		{in: "3306,5432,8000-8100", want: "3306,5432,8000-8100", contains: []uint16{3306, 5432, 8000, 8050, 8100}, excludes: []uint16{3307, 7999, 8101}},
		{in: "443, 80 ,8080", want: "80,443,8080", contains: []uint16{80, 443, 8080}, excludes: []uint16{81}},
		{in: "10-20,15-30,31", want: "10-31", contains: []uint16{10, 25, 31}, excludes: []uint16{9, 32}},
		{in: "5,4,3,3", want: "3-5", contains: []uint16{3, 4, 5}, excludes: []uint16{2, 6}},
		{in: "1-65535", want: "1-65535", contains: []uint16{1, 32768, 65535}, excludes: []uint16{0}},
		{in: "7-7", want: "7", contains: []uint16{7}, excludes: []uint16{6, 8}},
		{in: "100 - 102", want: "100-102", contains: []uint16{101}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParsePortSet(tc.in)
			if err != nil {
				t.Fatalf("ParsePortSet(%q): %v", tc.in, err)
			}
			if got := s.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if s.IsEmpty() != (tc.want == "") {
				t.Errorf("IsEmpty() = %v", s.IsEmpty())
			}
			for _, p := range tc.contains {
				if !s.Contains(p) {
					t.Errorf("Contains(%d) = false", p)
				}
			}
			for _, p := range tc.excludes {
				if s.Contains(p) {
					t.Errorf("Contains(%d) = true", p)
				}
			}
			// Canonical form round-trips.
			again, err := ParsePortSet(s.String())
			if err != nil || again.String() != s.String() {
				t.Errorf("round trip of %q = %q, %v", s.String(), again.String(), err)
			}
		})
	}
}

func TestParsePortSetErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, wantErr string }{
		{"0", `invalid port "0": must be between 1 and 65535`},
		{"65536", `invalid port "65536": must be between 1 and 65535`},
		{"99999999999999999999", `invalid port "99999999999999999999": must be between 1 and 65535`},
		{"-1", `invalid port "": not a number`},
		{"80,x", `invalid port "x": not a number`},
		{"+80", `invalid port "+80": not a number`},
		{"1-", `invalid port "": not a number`},
		{"20-10", `invalid port range "20-10": start is greater than end`},
		{"1-2-3", `invalid port "2-3": not a number`},
		{"0-10", `invalid port "0": must be between 1 and 65535`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParsePortSet(tc.in)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("ParsePortSet(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestPortSetAll(t *testing.T) {
	s, err := ParsePortSet("8080,1-3,65535")
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Collect(s.All())
	want := []uint16{1, 2, 3, 8080, 65535}
	if !slices.Equal(got, want) {
		t.Fatalf("All() = %v, want %v", got, want)
	}
	for p := range s.All() {
		if p != 1 {
			t.Fatalf("first port %d, want 1", p)
		}
		break // stopping early must not panic
	}
	if n := len(slices.Collect(PortSet{}.All())); n != 0 {
		t.Fatalf("empty set yields %d ports", n)
	}
}
