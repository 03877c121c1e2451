package localmesh

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestWriteTargets: Prometheus' file discovery gets every pod's proxy
// admin address with the labels viz reads, the service account included.
func TestWriteTargets(t *testing.T) {
	m := &Mesh{cfg: Config{StateDir: t.TempDir()}}
	s := &State{Workloads: []*Workload{
		{Name: "web", Namespace: "demo", ServiceAccount: "web-sa", IP: netip.MustParseAddr("10.0.0.7")},
		{Name: "bare", Namespace: "demo", IP: netip.MustParseAddr("10.0.0.8")},
		{Name: "nowhere", Namespace: "demo"}, // no address yet: not a target
	}}
	if err := m.writeTargets(s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(m.cfg.StateDir, "prometheus", "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"namespace": "demo", "pod": "web", "deployment": "web", "serviceaccount": "web-sa"},
		{"namespace": "demo", "pod": "bare", "deployment": "bare"},
	}
	if len(got) != 2 || got[0].Targets[0] != "10.0.0.7:4191" || got[1].Targets[0] != "10.0.0.8:4191" {
		t.Fatalf("targets: %s", b)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Labels, want[i]) {
			t.Errorf("labels %v, want %v", got[i].Labels, want[i])
		}
	}
}
