package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestNodeOwner(t *testing.T) {
	tests := []struct {
		id      string
		wantPID int
		wantOK  bool
	}{
		{"l5d-node-1234-1", 1234, true},
		{"l5d-node-99-12", 99, true},
		{"l5d-node-x-1", 0, false},
		{"l5d-node--1", 0, false},
		{"l5d-node-0-1", 0, false},
		{"l5dt-abc-switch", 0, false},
	}
	for _, tt := range tests {
		pid, ok := nodeOwner(tt.id)
		if pid != tt.wantPID || ok != tt.wantOK {
			t.Errorf("nodeOwner(%q) = %d, %t; want %d, %t", tt.id, pid, ok, tt.wantPID, tt.wantOK)
		}
	}
}

// TestNodeConfigs renders the node's configuration files and checks what
// the components will read from them.
func TestNodeConfigs(t *testing.T) {
	dir := t.TempDir()
	pki, err := writeNodePKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	f := newNodeFiles(dir)
	if err := f.writeConfigs(nodeParams(dir, f, pki, "l5d-node-1-1"), pki); err != nil {
		t.Fatal(err)
	}

	var kubelet map[string]any
	read(t, f.kubeletConf, &kubelet, unmarshalYAML)
	for key, want := range map[string]any{
		"kind":                     "KubeletConfiguration",
		"cgroupRoot":               "/l5d-node-1-1",
		"cgroupDriver":             "cgroupfs",
		"failCgroupV1":             false,
		"oomScoreAdj":              float64(0),
		"clusterDomain":            ClusterDomain,
		"containerRuntimeEndpoint": "unix://" + f.containerdSock,
		"address":                  NodeIP,
	} {
		if got := kubelet[key]; got != want {
			t.Errorf("kubelet %s = %#v, want %#v", key, got, want)
		}
	}
	if dns, _ := kubelet["clusterDNS"].([]any); len(dns) != 1 || dns[0] != ClusterDNSIP {
		t.Errorf("kubelet clusterDNS = %v, want [%s]", kubelet["clusterDNS"], ClusterDNSIP)
	}

	var cni struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	read(t, filepath.Join(f.cniConfDir, "10-l5d-node-1-1.conflist"), &cni, json.Unmarshal)
	if cni.Name != "l5d-node-1-1" || len(cni.Plugins) != 1 || cni.Plugins[0].Type != "bridge" || cni.Plugins[0].IPAM.Ranges[0][0].Subnet != PodCIDR {
		t.Errorf("CNI config %+v", cni)
	}

	b, err := os.ReadFile(f.containerdConf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`address = "` + f.containerdSock + `"`,
		`sandbox_image = "registry.k8s.io/pause:3.10.1"`,
		"restrict_oom_score_adj = true",
		"netns_mounts_under_state_dir = true",
		`conf_dir = "` + f.cniConfDir + `"`,
		"SystemdCgroup = false",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("containerd config lacks %q:\n%s", want, b)
		}
	}

	for user, path := range f.kubeconfigs {
		var kc map[string]any
		read(t, path, &kc, unmarshalYAML)
		clusters, _ := kc["clusters"].([]any)
		if len(clusters) != 1 || !strings.Contains(toJSON(t, clusters[0]), "https://"+NodeIP+":6443") {
			t.Errorf("%s kubeconfig clusters %v, want the node's API server", user, clusters)
		}
	}
}

func read(t *testing.T, path string, v any, unmarshal func([]byte, any) error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
}

func unmarshalYAML(b []byte, v any) error { return yaml.Unmarshal(b, v) }

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDNSObjects(t *testing.T) {
	_, role, binding, cm, deploy, svc := dnsObjects()
	if binding.RoleRef.Name != role.Name {
		t.Errorf("binding refers to %q, role is %q", binding.RoleRef.Name, role.Name)
	}
	for k, v := range svc.Spec.Selector {
		if deploy.Spec.Template.Labels[k] != v {
			t.Errorf("Service selects %s=%s, pods have %v", k, v, deploy.Spec.Template.Labels)
		}
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix(ServiceCIDR).Contains(ip) || svc.Spec.ClusterIP != ClusterDNSIP {
		t.Errorf("kube-dns cluster IP %q, want %s in %s", svc.Spec.ClusterIP, ClusterDNSIP, ServiceCIDR)
	}
	if !strings.Contains(cm.Data["Corefile"], "kubernetes "+ClusterDomain) {
		t.Errorf("Corefile lacks the kubernetes plugin for %s:\n%s", ClusterDomain, cm.Data["Corefile"])
	}
	if strings.Contains(cm.Data["Corefile"], "forward") {
		t.Errorf("Corefile forwards queries out of the node:\n%s", cm.Data["Corefile"])
	}
}

// TestForwarder relays to an echo server on 127.0.0.1 and checks that
// close cuts live connections.
func TestForwarder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	fwd, err := newForwarder(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", fwd.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through the forwarder: %q, %v", line, err)
	}
	fwd.close()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after close")
	}
	if c2, err := net.DialTimeout("tcp", fwd.addr(), time.Second); err == nil {
		c2.Close()
		t.Fatal("forwarder still accepting after close")
	}
}
