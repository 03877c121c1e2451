package proxyenv

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "000", want: 0},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "10s", want: 10 * time.Second},
		{in: " 10s ", want: 10 * time.Second},
		{in: "1m", want: time.Minute},
		{in: "2h", want: 2 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "365d", want: 365 * 24 * time.Hour},
		{in: "1000ms", want: time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "250us", want: 250 * time.Microsecond},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "", wantErr: true},
		{in: "ten", wantErr: true},
		{in: "10", wantErr: true},
		{in: "10 s", wantErr: true},
		{in: "-5s", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "1w", wantErr: true},
		{in: "106752d", wantErr: true},
		{in: "99999999999999999999s", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidDuration) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want ErrInvalidDuration", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}
