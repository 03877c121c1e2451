package bench

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoadArgs(t *testing.T) {
	e := endpoints{HTTP: "http://10.0.0.2:8080/", GRPC: "10.0.0.2:8079"}
	tests := []struct {
		s        scenario
		json     string
		contains [][]string
		last     string
		absent   []string
	}{
		{
			s:        scenario{Name: "http-1000", QPS: 1000},
			json:     "/tmp/x.json",
			contains: [][]string{{"-qps", "1000"}, {"-c", "16"}, {"-t", "2s"}, {"-payload-size", "128"}, {"-json", "/tmp/x.json"}, {"-p", "50,99,99.9"}},
			last:     e.HTTP,
			absent:   []string{"-grpc"},
		},
		{
			s:        scenario{Name: "http-max", QPS: -1},
			contains: [][]string{{"-qps", "-1"}},
			last:     e.HTTP,
			absent:   []string{"-json", "-grpc"},
		},
		{
			s:        scenario{Name: "grpc-max", GRPC: true, QPS: -1},
			contains: [][]string{{"-grpc", "-ping"}, {"-qps", "-1"}},
			last:     e.GRPC,
			absent:   []string{"-payload-size"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.s.Name, func(t *testing.T) {
			args := tt.s.loadArgs(e, 2*time.Second, tt.json)
			if args[0] != "load" {
				t.Errorf("args[0] = %q, want load", args[0])
			}
			if got := args[len(args)-1]; got != tt.last {
				t.Errorf("target = %q, want %q", got, tt.last)
			}
			joined := " " + strings.Join(args, " ") + " "
			for _, c := range tt.contains {
				if !strings.Contains(joined, " "+strings.Join(c, " ")+" ") {
					t.Errorf("args %v lack %v", args, c)
				}
			}
			for _, a := range tt.absent {
				if slices.Contains(args, a) {
					t.Errorf("args %v contain %s", args, a)
				}
			}
			if got, want := loadTimeout(args), 2*time.Second+fortioSlack; got != want {
				t.Errorf("loadTimeout = %v, want %v", got, want)
			}
		})
	}
}

// fortioJSON is a fortio 1.68 result, trimmed of fields the harness
// ignores, with retCodes spliced in.
func fortioJSON(retCodes string, count int, percentiles string) string {
	return `{
  "RunType": "HTTP",
  "RequestedQPS": "max",
  "ActualQPS": 41090.34877169847,
  "ActualDuration": 2000056034,
  "NumThreads": 16,
  "Version": "1.68.2",
  "DurationHistogram": {
    "Count": ` + strconv.Itoa(count) + `,
    "Min": 0.000029,
    "Avg": 0.000097,
    "Percentiles": [` + percentiles + `]
  },
  "ErrorsDurationHistogram": {"Count": 0},
  "RetCodes": {` + retCodes + `}
}`
}

const allPercentiles = `{"Percentile": 50, "Value": 0.00051},
      {"Percentile": 99, "Value": 0.000993},
      {"Percentile": 99.9, "Value": 0.00197}`

func TestParseFortio(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ok      string
		want    loadStats
		wantErr string
	}{
		{
			name: "http all ok",
			in:   fortioJSON(`"200": 82183`, 82183, allPercentiles),
			ok:   "200",
			want: loadStats{
				QPS: 41090.34877169847, Duration: 2000056034, Requests: 82183,
				P50: 510 * time.Microsecond, P99: 993 * time.Microsecond, P999: 1970 * time.Microsecond,
			},
		},
		{
			name: "http with errors",
			in:   fortioJSON(`"200": 90, "503": 7, "-1": 3`, 100, allPercentiles),
			ok:   "200",
			want: loadStats{
				QPS: 41090.34877169847, Duration: 2000056034, Requests: 100, Errors: 10,
				P50: 510 * time.Microsecond, P99: 993 * time.Microsecond, P999: 1970 * time.Microsecond,
			},
		},
		{
			name: "grpc codes",
			in:   fortioJSON(`"SERVING": 95, "-1": 5`, 100, allPercentiles),
			ok:   "SERVING",
			want: loadStats{
				QPS: 41090.34877169847, Duration: 2000056034, Requests: 100, Errors: 5,
				P50: 510 * time.Microsecond, P99: 993 * time.Microsecond, P999: 1970 * time.Microsecond,
			},
		},
		{
			// Every call counts as an error rather than vanishing.
			name: "grpc codes read as http",
			in:   fortioJSON(`"SERVING": 100`, 100, allPercentiles),
			ok:   "200",
			want: loadStats{
				QPS: 41090.34877169847, Duration: 2000056034, Requests: 100, Errors: 100,
				P50: 510 * time.Microsecond, P99: 993 * time.Microsecond, P999: 1970 * time.Microsecond,
			},
		},
		{name: "no calls", in: fortioJSON(``, 0, allPercentiles), ok: "200", wantErr: "no calls"},
		{name: "codes and histogram disagree", in: fortioJSON(`"200": 5`, 6, allPercentiles), ok: "200", wantErr: "sum to 5"},
		{name: "missing percentile", in: fortioJSON(`"200": 5`, 5, `{"Percentile": 50, "Value": 0.001}`), ok: "200", wantErr: "missing"},
		{name: "not json", in: "All done", ok: "200", wantErr: "parse fortio json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFortio([]byte(tt.in), tt.ok)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
