package proxyenv

import (
	"log/slog"
	"testing"
)

func TestParseLogSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		wantRaw   string
		wantLevel slog.Level
	}{
		{"warn,linkerd=info", "warn,linkerd=info", slog.LevelInfo},
		{"warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off", "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off", slog.LevelInfo},
		{"debug", "debug", slog.LevelDebug},
		{"  WARN  ", "WARN", slog.LevelWarn},
		{"error", "error", slog.LevelError},
		{"trace", "trace", LevelTrace},
		{"off", "off", LevelOff},
		{"linkerd=debug,warn", "linkerd=debug,warn", slog.LevelDebug},
		{"info,linkerd2_proxy=trace", "info,linkerd2_proxy=trace", LevelTrace},
		{"linkerd=info,linkerd=error", "linkerd=info,linkerd=error", slog.LevelError},
		{"warn,hickory=trace", "warn,hickory=trace", slog.LevelWarn},
		{"linkerd_app=debug", "linkerd_app=debug", slog.LevelInfo},
		{"debug,error", "debug,error", slog.LevelError},
		{"linkerd = Debug", "linkerd = Debug", slog.LevelDebug},
		{"[span{field=value}]=debug,warn", "[span{field=value}]=debug,warn", slog.LevelWarn},
		{"4", "4", slog.LevelDebug},
		{"linkerd=0", "linkerd=0", LevelOff},
		{"", "", slog.LevelInfo},
		{"warn,,", "warn,,", slog.LevelWarn},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLogSpec(tc.in)
			if err != nil {
				t.Fatalf("ParseLogSpec(%q): %v", tc.in, err)
			}
			want := LogSpec{Raw: tc.wantRaw, Level: tc.wantLevel}
			if got != want {
				t.Fatalf("ParseLogSpec(%q) = %+v, want %+v", tc.in, got, want)
			}
			if got.String() != tc.wantRaw {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

func TestParseLogSpecErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, wantErr string }{
		{"verbose", `invalid log level "verbose" in directive "verbose"`},
		{"linkerd", `invalid log level "linkerd" in directive "linkerd"`},
		{"warn,linkerd=", `invalid log level "" in directive "linkerd="`},
		{"hickory=loud", `invalid log level "loud" in directive "hickory=loud"`},
		{"=debug", `invalid log directive "=debug": empty target`},
		{"warning", `invalid log level "warning" in directive "warning"`},
		{"6", `invalid log level "6" in directive "6"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseLogSpec(tc.in)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("ParseLogSpec(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
		})
	}
}
