package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/linkerd-go/linkerd/internal/images"
)

// containerdSocket is containerd's API socket, relative to the node's dir.
const containerdSocket = "containerd/containerd.sock"

// containerdNamespace is the containerd namespace of the CRI plugin, where
// the kubelet's images and containers are.
const containerdNamespace = "k8s.io"

// nodeFiles are the paths of the node's configuration and state, all under
// its dir.
type nodeFiles struct {
	dir            string
	containerdConf string
	containerdSock string
	kubeletConf    string
	cniConfDir     string
	resolvConf     string
	logDir         string
	// kubeconfigs of the components (server: the node IP), by user.
	kubeconfigs map[string]string
}

func newNodeFiles(dir string) *nodeFiles {
	f := &nodeFiles{
		dir:            dir,
		containerdConf: filepath.Join(dir, "containerd.toml"),
		containerdSock: filepath.Join(dir, containerdSocket),
		kubeletConf:    filepath.Join(dir, "kubelet.yaml"),
		cniConfDir:     filepath.Join(dir, "cni"),
		resolvConf:     filepath.Join(dir, "resolv.conf"),
		logDir:         filepath.Join(dir, "log"),
		kubeconfigs:    map[string]string{},
	}
	for _, u := range []string{userAdmin, userKubelet, userScheduler, userControllerManager, userKubeProxy} {
		f.kubeconfigs[u] = filepath.Join(dir, u+".kubeconfig")
	}
	return f
}

// configParams fill the templates below.
type configParams struct {
	Dir, CNIConfDir, Sock, ResolvConf string
	NodeIP, PodCIDR, ClusterDNS       string
	ClusterDomain, CNINetwork, Pause  string
	CgroupRoot, CACert                string
	CNIBinDir                         string
	KubeletPort                       int
}

// containerdTemplate is containerd 1.6's configuration (version 2).
var containerdTemplate = template.Must(template.New("containerd").Parse(`version = 2
root = "{{.Dir}}/containerd/root"
state = "{{.Dir}}/containerd/state"
[grpc]
  address = "{{.Sock}}"
[ttrpc]
  address = "{{.Sock}}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  # No CAP_SYS_RESOURCE in some VMs: runc could not give the sandbox its
  # oom_score_adj of -998. Clamp OOM scores to containerd's own instead.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted here, not in the host's /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{{.Dir}}/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBinDir}}"
    conf_dir = "{{.CNIConfDir}}"
    max_conf_num = 1
`))

// cniTemplate is the pod network: a bridge with the node as gateway,
// addresses from host-local IPAM kept under the node's dir.
var cniTemplate = template.Must(template.New("cni").Parse(`{"cniVersion": "1.0.0", "name": "{{.CNINetwork}}", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "{{.Dir}}/cni-ipam",
            "ranges": [[{"subnet": "{{.PodCIDR}}"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
]}
`))

// kubeletTemplate is the kubelet's configuration.
var kubeletTemplate = template.Must(template.New("kubelet").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {{.NodeIP}}
port: {{.KubeletPort}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.CACert}}}
authorization: {mode: Webhook}
# A cgroup v1 host, driven with cgroupfs; 1.35+ refuses v1 unless told.
cgroupDriver: cgroupfs
failCgroupV1: false
# Pods' cgroups under a root of their own, so that nodes do not collide.
cgroupRoot: {{.CgroupRoot}}
failSwapOn: false
# The default, -999, needs CAP_SYS_RESOURCE.
oomScoreAdj: 0
containerRuntimeEndpoint: unix://{{.Sock}}
clusterDNS: [{{.ClusterDNS}}]
clusterDomain: {{.ClusterDomain}}
resolvConf: {{.ResolvConf}}
podLogsDir: {{.Dir}}/pod-logs
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 2s
syncFrequency: 10s
fileCheckFrequency: 5s
`))

// writeConfigs writes containerd's, the kubelet's and the CNI
// configuration, and every component's kubeconfig.
func (f *nodeFiles) writeConfigs(p configParams, pki *nodePKI) error {
	for _, d := range []string{f.cniConfDir, f.logDir, filepath.Dir(f.containerdSock)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		tmpl *template.Template
		path string
	}{
		{containerdTemplate, f.containerdConf},
		{kubeletTemplate, f.kubeletConf},
		{cniTemplate, filepath.Join(f.cniConfDir, "10-"+p.CNINetwork+".conflist")},
	} {
		var b bytes.Buffer
		if err := t.tmpl.Execute(&b, p); err != nil {
			return fmt.Errorf("%s config: %w", t.tmpl.Name(), err)
		}
		if err := os.WriteFile(t.path, b.Bytes(), 0o600); err != nil {
			return fmt.Errorf("%s config: %w", t.tmpl.Name(), err)
		}
	}
	// Pods with dnsPolicy Default get this; nothing outside the node
	// answers, so it names the cluster DNS too.
	if err := os.WriteFile(f.resolvConf, []byte("nameserver "+p.ClusterDNS+"\n"), 0o644); err != nil {
		return err
	}
	server := "https://" + NodeIP + ":" + strconv.Itoa(nodeAPIPort)
	for user, path := range f.kubeconfigs {
		if err := writeClientKubeconfig(path, server, pki.CAPEM, pki.clients[user]); err != nil {
			return err
		}
	}
	return nil
}

// writeClientKubeconfig writes a kubeconfig with the credentials embedded.
func writeClientKubeconfig(path, server string, caPEM []byte, cred clientCred) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["node"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cred.certPEM, ClientKeyData: cred.keyPEM}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", AuthInfo: "user", Namespace: "default"}
	cfg.CurrentContext = "node"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// nodeParams are the template parameters of a node.
func nodeParams(dir string, f *nodeFiles, pki *nodePKI, id string) configParams {
	return configParams{
		Dir:           dir,
		CNIConfDir:    f.cniConfDir,
		Sock:          f.containerdSock,
		ResolvConf:    f.resolvConf,
		NodeIP:        NodeIP,
		PodCIDR:       PodCIDR,
		ClusterDNS:    ClusterDNSIP,
		ClusterDomain: ClusterDomain,
		CNINetwork:    id,
		Pause:         images.PauseRef,
		CgroupRoot:    "/" + id,
		CACert:        pki.CACert,
		CNIBinDir:     CNIBinDir,
		KubeletPort:   kubeletPort,
	}
}
