package bench

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "19716 (cat) R 19712 19712 16163 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 124944 3133440 413 18446744073709551615",
			want: procStat{PPID: 19712, UTime: 7, STime: 3},
		},
		{
			name: "command with spaces and parentheses",
			in:   "42 (a) b (c)) S 1 42 42 0 -1 4194304 0 0 0 0 1234 567 0 0 20 0 4 0 1 1 1",
			want: procStat{PPID: 1, UTime: 1234, STime: 567},
		},
		{name: "truncated", in: "42 (x) S 1 42 42 0", wantErr: true},
		{name: "no command", in: "42 x S 1", wantErr: true},
		{name: "bad utime", in: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 u 5 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "present", in: "Name:\tcat\nVmPeak:\t  100 kB\nVmRSS:\t    1912 kB\nThreads:\t1\n", want: 1912 << 10},
		{name: "kernel thread", in: "Name:\tkthreadd\nThreads:\t1\n", want: 0},
		{name: "bad unit", in: "VmRSS:\t 12 MB\n", wantErr: true},
		{name: "bad number", in: "VmRSS:\t x kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseCPUTimes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cpuTimes
		wantErr bool
	}{
		{
			name: "two cpus",
			in:   "cpu  23067 5 8181 216277 1147 3 174 68 9 0\ncpu0 11282 0 3953 108723 430 0 48 36 0 0\nintr 1\n",
			want: cpuTimes{Busy: 23067 + 5 + 8181 + 3 + 174, Idle: 216277 + 1147, Steal: 68},
		},
		{name: "no aggregate line", in: "cpu0 1 2 3 4 5 6 7 8\n", wantErr: true},
		{name: "short", in: "cpu 1 2 3\n", wantErr: true},
		{name: "not a number", in: "cpu 1 2 3 x 5 6 7 8\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUTimes([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDescendants(t *testing.T) {
	children := map[int][]int{1: {10, 20}, 10: {11}, 11: {12}, 20: {}, 99: {100}}
	tests := []struct {
		roots []int
		want  []int
	}{
		{roots: []int{10}, want: []int{10, 11, 12}},
		{roots: []int{1}, want: []int{1, 10, 20, 11, 12}},
		{roots: []int{10, 11}, want: []int{10, 11, 12}}, // no duplicates
		{roots: []int{7}, want: []int{7}},
		{roots: nil, want: nil},
	}
	for _, tt := range tests {
		if got := descendants(tt.roots, children); !slices.Equal(got, tt.want) {
			t.Errorf("descendants(%v) = %v, want %v", tt.roots, got, tt.want)
		}
	}
}

// TestSampleUsageSelf checks the /proc plumbing on the test process itself,
// which has burnt some CPU and has a resident set by now.
func TestSampleUsageSelf(t *testing.T) {
	deadline := time.Now().Add(200 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	u, err := sampleUsage([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.RSS <= 0 {
		t.Errorf("sampleUsage(self) = %+v, want CPU and RSS > 0", u)
	}
	if _, err := readCPUTimes(); err != nil {
		t.Error(err)
	}
}
