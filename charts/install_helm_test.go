package charts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts/chartstest"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// identityFiles writes a trust anchor, an issuer it signs and the issuer's
// key to dir, as a user of the chart has them, and returns the
// --set-file arguments of `helm install` for them.
func identityFiles(t *testing.T, dir string) []string {
	t.Helper()
	_, files := chartstest.WriteIdentity(t, dir, time.Hour, time.Hour)
	return files.SetFile()
}

// object is what the tests read of a rendered manifest.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data     map[string]string `json:"data"`
	Webhooks []struct {
		Name         string `json:"name"`
		ClientConfig struct {
			CABundle []byte `json:"caBundle"`
			Service  struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"service"`
		} `json:"clientConfig"`
		FailurePolicy string `json:"failurePolicy"`
	} `json:"webhooks"`
	Spec struct {
		Replicas *int `json:"replicas"`
	} `json:"spec"`
}

func decodeObjects(t *testing.T, manifests []releaseutil.Manifest) map[string]object {
	t.Helper()
	objs := map[string]object{}
	for _, m := range manifests {
		var o object
		if err := yaml.Unmarshal([]byte(m.Content), &o); err != nil {
			t.Fatalf("%s: %v\n%s", m.Name, err, m.Content)
		}
		key := o.Kind + "/" + o.Metadata.Name
		if _, dup := objs[key]; dup {
			t.Errorf("%s rendered twice", key)
		}
		objs[key] = o
	}
	return objs
}

// TestHelmInstall renders linkerd-control-plane as `helm install
// linkerd-control-plane CHART -n linkerd --set-file ...` (after `helm
// dependency build`) would, with the identity values only: the chart
// generates each webhook's serving certificate and CA, and the Secret's
// certificate must be trusted by the webhook configuration's caBundle for
// the webhook Service's DNS name.
func TestHelmInstall(t *testing.T) {
	dir := t.TempDir()
	chartDir := writeChart(t, dir, ControlPlane)
	setFiles := identityFiles(t, dir)

	for _, tc := range []struct {
		name      string
		namespace string
		values    []string
		set       []string
		replicas  int
		policy    string
	}{
		{name: "default", namespace: "linkerd", replicas: 1, policy: "Ignore"},
		{name: "ha", namespace: "linkerd", values: []string{filepath.Join(chartDir, "values-ha.yaml")}, replicas: 3, policy: "Fail"},
		{name: "other namespace", namespace: "mesh", set: []string{"controllerNamespace=mesh"}, replicas: 1, policy: "Ignore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := chartstest.Install{
				Release: "linkerd-control-plane", Namespace: tc.namespace,
				Values: tc.values, Set: tc.set, SetFile: setFiles, KubeVersion: "v1.36.3",
			}
			manifests, err := in.Render(chartDir)
			if err != nil {
				t.Fatalf("helm install: %v", err)
			}
			objs := decodeObjects(t, manifests)
			if _, ok := objs["Namespace/"+tc.namespace]; ok {
				t.Error("the chart renders the Namespace: it clashes with helm install --create-namespace")
			}
			for key, o := range objs {
				clusterScoped := strings.HasPrefix(key, "Cluster") || strings.HasSuffix(o.Kind, "WebhookConfiguration")
				if !clusterScoped && o.Metadata.Namespace != tc.namespace {
					t.Errorf("%s is in namespace %q, want the release namespace %q", key, o.Metadata.Namespace, tc.namespace)
				}
			}
			if d, ok := objs["Deployment/"+k8s.ProxyInjectorDeploymentName]; !ok || d.Spec.Replicas == nil || *d.Spec.Replicas != tc.replicas {
				t.Errorf("proxy injector deployment: replicas %v, want %d", d.Spec.Replicas, tc.replicas)
			}

			var cas []*x509.Certificate
			for _, w := range []struct{ secret, service, config string }{
				{k8s.ProxyInjectorTLSSecretName, k8s.ProxyInjectorServiceName, "MutatingWebhookConfiguration/" + k8s.ProxyInjectorWebhookConfigName},
				{k8s.SPValidatorTLSSecretName, k8s.SPValidatorServiceName, "ValidatingWebhookConfiguration/" + k8s.SPValidatorWebhookConfigName},
			} {
				secret, ok := objs["Secret/"+w.secret]
				if !ok {
					t.Fatalf("no Secret %s", w.secret)
				}
				if _, ok := objs["Service/"+w.service]; !ok {
					t.Fatalf("no Service %s", w.service)
				}
				cfg, ok := objs[w.config]
				if !ok || len(cfg.Webhooks) == 0 {
					t.Fatalf("no webhooks in %s", w.config)
				}
				host := w.service + "." + tc.namespace + ".svc"
				for _, h := range cfg.Webhooks {
					if h.ClientConfig.Service.Name != w.service || h.ClientConfig.Service.Namespace != tc.namespace {
						t.Errorf("%s: webhook %s calls service %s/%s, want %s/%s", w.config, h.Name,
							h.ClientConfig.Service.Namespace, h.ClientConfig.Service.Name, tc.namespace, w.service)
					}
					if h.FailurePolicy != tc.policy {
						t.Errorf("%s: failurePolicy %s, want %s", w.config, h.FailurePolicy, tc.policy)
					}
					cas = append(cas, verifyServing(t, secretData(t, secret, "tls.crt"), secretData(t, secret, "tls.key"), h.ClientConfig.CABundle, host))
				}
			}
			if len(cas) == 2 && cas[0].Equal(cas[1]) {
				t.Error("both webhooks have the same CA: want one per webhook")
			}

			// The generated keys are in the Secrets only, not in the
			// values stored in linkerd-config.
			m := manifestOf(manifests, "ConfigMap", k8s.ConfigMapName)
			if m == "" {
				t.Fatal("no linkerd-config")
			}
			if strings.Contains(m, "PRIVATE KEY") {
				t.Errorf("linkerd-config holds a private key:\n%s", m)
			}
		})
	}
}

// secretData returns the decoded value of a Secret's data key.
func secretData(t *testing.T, secret object, key string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(secret.Data[key])
	if err != nil || len(b) == 0 {
		t.Fatalf("Secret %s: key %s: %q (%v)", secret.Metadata.Name, key, secret.Data[key], err)
	}
	return b
}

// manifestOf returns the text of the rendered object kind/name.
func manifestOf(manifests []releaseutil.Manifest, kind, name string) string {
	for _, m := range manifests {
		if m.Head != nil && m.Head.Kind == kind && m.Head.Metadata != nil && m.Head.Metadata.Name == name {
			return m.Content
		}
	}
	return ""
}

// verifyServing checks that the certificate and key serve TLS for host to
// a client trusting only caBundle (what the API server does when it calls
// the webhook), and returns the CA.
func verifyServing(t *testing.T, crtPEM, keyPEM, caBundle []byte, host string) *x509.Certificate {
	t.Helper()
	cert, err := tls.X509KeyPair(crtPEM, keyPEM)
	if err != nil {
		t.Fatalf("the Secret's tls.crt and tls.key: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatalf("caBundle holds no PEM certificate: %q", caBundle)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the Secret's certificate does not verify against the caBundle for %s: %v", host, err)
	}
	if left := time.Until(leaf.NotAfter); left < 300*24*time.Hour {
		t.Errorf("the certificate for %s is valid for %v only", host, left)
	}

	// A TLS handshake on 127.0.0.1, the client as the API server's.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		srv := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		done <- srv.HandshakeContext(ctx)
	}()
	var d tls.Dialer
	d.Config = &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Errorf("TLS handshake as the API server, for %s: %v", host, err)
	} else {
		conn.Close()
	}
	ln.Close()
	<-done

	block, _ := pem.Decode(caBundle)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestHelmInstallErrors: what helm install users get wrong fails with an
// error naming the value to set.
func TestHelmInstallErrors(t *testing.T) {
	dir := t.TempDir()
	chartDir := writeChart(t, dir, ControlPlane)
	setFiles := identityFiles(t, dir)
	without := func(key string) []string {
		var out []string
		for _, s := range setFiles {
			if !strings.HasPrefix(s, key+"=") {
				out = append(out, s)
			}
		}
		return out
	}
	anchors := strings.TrimPrefix(setFiles[0], "identityTrustAnchorsPEM=")

	for _, tc := range []struct {
		name      string
		namespace string
		set       []string
		setFile   []string
		want      []string
	}{
		{name: "no trust anchors", setFile: without("identityTrustAnchorsPEM"), want: []string{"identityTrustAnchorsPEM"}},
		{name: "no issuer certificate", setFile: without("identity.issuer.tls.crtPEM"), want: []string{"identity.issuer.tls.crtPEM"}},
		{name: "no issuer key", setFile: without("identity.issuer.tls.keyPEM"), want: []string{"identity.issuer.tls.keyPEM"}},
		{name: "nothing", want: []string{"PEM"}},
		{
			name:    "webhook certificate without its key and CA",
			setFile: append(slices.Clone(setFiles), "proxyInjector.crtPEM="+anchors),
			want:    []string{"proxyInjector.keyPEM", "give all three"},
		},
		{
			name: "external secret without a CA", set: []string{"profileValidator.externalSecret=true"}, setFile: setFiles,
			want: []string{"profileValidator.caBundle", "profileValidator.externalSecret"},
		},
		{
			name: "release namespace is not controllerNamespace", namespace: "mesh", setFile: setFiles,
			want: []string{"controllerNamespace", `"mesh"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.namespace
			if ns == "" {
				ns = "linkerd"
			}
			in := chartstest.Install{Release: "linkerd-control-plane", Namespace: ns, Set: tc.set, SetFile: tc.setFile, KubeVersion: "v1.36.3"}
			_, err := in.Render(chartDir)
			if err == nil {
				t.Fatal("rendered without an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %q: %v", w, err)
				}
			}
		})
	}

	t.Run("without helm dependency build", func(t *testing.T) {
		bare := filepath.Join(t.TempDir(), ControlPlane)
		if err := copyDir(ControlPlane, bare); err != nil {
			t.Fatal(err)
		}
		_, err := chartstest.Install{Release: "l", Namespace: "linkerd", SetFile: setFiles}.Render(bare)
		if err == nil || !strings.Contains(err.Error(), "partials") {
			t.Errorf("rendered without the partials dependency: %v", err)
		}
	})
}

// TestHelmInstallExternalSecret: with externalSecret (cert-manager) the
// chart renders no Secret and uses the given caBundle.
func TestHelmInstallExternalSecret(t *testing.T) {
	dir := t.TempDir()
	chartDir := writeChart(t, dir, ControlPlane)
	setFiles := identityFiles(t, dir)
	anchors := strings.TrimPrefix(setFiles[0], "identityTrustAnchorsPEM=")
	in := chartstest.Install{
		Release: "linkerd-control-plane", Namespace: "linkerd", KubeVersion: "v1.36.3",
		Set:     []string{"proxyInjector.externalSecret=true"},
		SetFile: append(setFiles, "proxyInjector.caBundle="+anchors),
	}
	manifests, err := in.Render(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, manifests)
	if _, ok := objs["Secret/"+k8s.ProxyInjectorTLSSecretName]; ok {
		t.Error("the chart renders the external Secret")
	}
	want, err := os.ReadFile(anchors)
	if err != nil {
		t.Fatal(err)
	}
	cfg := objs["MutatingWebhookConfiguration/"+k8s.ProxyInjectorWebhookConfigName]
	if len(cfg.Webhooks) == 0 || strings.TrimSpace(string(cfg.Webhooks[0].ClientConfig.CABundle)) != strings.TrimSpace(string(want)) {
		t.Errorf("caBundle is not the given one: %+v", cfg.Webhooks)
	}
	// The other webhook still gets a generated certificate.
	if _, ok := objs["Secret/"+k8s.SPValidatorTLSSecretName]; !ok {
		t.Error("no sp-validator Secret")
	}
}
