package k8s

import (
	"testing"
)

func TestParsePortRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    PortRange
		wantErr bool
	}{
		{in: "80", want: PortRange{80, 80}},
		{in: " 8080 ", want: PortRange{8080, 8080}},
		{in: "4000-4100", want: PortRange{4000, 4100}},
		{in: "1-65535", want: PortRange{1, 65535}},
		{in: "7-7", want: PortRange{7, 7}},
		{in: "0", wantErr: true},
		{in: "65536", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "10-5", wantErr: true},
		{in: "10-", wantErr: true},
		{in: "a-b", wantErr: true},
		{in: "http", wantErr: true},
		{in: "", wantErr: true},
		{in: "1-2-3", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePortRange(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePortRange(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParsePortSet(t *testing.T) {
	t.Parallel()
	names := map[string]uint16{"mysql": 3306, "admin": 9990}
	tests := []struct {
		in      string
		want    string // String() of the valid part
		wantErr bool
		in1     []uint32 // ports that must be in the set
		out     []uint32 // ports that must not
	}{
		{in: "", want: "", out: []uint32{25, 80}},
		{in: DefaultOpaquePorts, want: DefaultOpaquePorts, in1: []uint32{25, 587, 3306, 4444, 5432, 6379, 9300, 11211}, out: []uint32{24, 26, 80, 3307}},
		{in: "9000-9002, 80,,", want: "80,9000-9002", in1: []uint32{80, 9000, 9001, 9002}, out: []uint32{8999, 9003, 81}},
		{in: "mysql,admin", want: "3306,9990", in1: []uint32{3306, 9990}},
		{in: "80,bogus,99999,443", want: "80,443", wantErr: true, in1: []uint32{80, 443}, out: []uint32{99999}},
		{in: "unknownname", want: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParsePortSetNamed(tt.in, names)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePortSetNamed(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
		}
		if got.String() != tt.want {
			t.Errorf("ParsePortSetNamed(%q) = %q, want %q", tt.in, got.String(), tt.want)
		}
		for _, p := range tt.in1 {
			if !got.Contains(p) {
				t.Errorf("ParsePortSetNamed(%q) does not contain %d", tt.in, p)
			}
		}
		for _, p := range tt.out {
			if got.Contains(p) {
				t.Errorf("ParsePortSetNamed(%q) contains %d", tt.in, p)
			}
		}
	}
	// Without names, a name is an error.
	if _, err := ParsePortSet("mysql"); err == nil {
		t.Error("ParsePortSet(\"mysql\") succeeded without names")
	}
}

func TestMustParsePortSetPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("MustParsePortSet did not panic on an invalid list")
		}
	}()
	MustParsePortSet("80,x")
}
