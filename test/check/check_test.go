// Package check runs `linkerd check` and `linkerd version` against a real
// kube-apiserver (test/cluster), through the CLI's own kubeconfig handling.
package check

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/cli/cmd"
	"github.com/linkerd-go/linkerd/pkg/healthcheck"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/test/cluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// linkerd runs the CLI against the test cluster.
func linkerd(t *testing.T, c *cluster.Cluster, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig", c.Kubeconfig)
	code = cmd.Execute(context.Background(), args, cmd.Env{Stdout: &out, Stderr: &errOut, ServerVersion: cmd.ClusterServerVersion})
	return code, out.String(), errOut.String()
}

func TestCheckPre(t *testing.T) {
	c := cluster.Start(t)
	code, out, errOut := linkerd(t, c, "check", "--pre", "-L", "l5d-check-pre")
	if code != 0 {
		t.Fatalf("check --pre exited %d on a fresh cluster:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"kubernetes-api\n--------------\n√ can initialize the client\n√ can query the Kubernetes API\n",
		"√ is running the minimum Kubernetes API version\n",
		"pre-kubernetes-setup\n--------------------\n√ control plane namespace does not already exist\n√ can create non-namespaced resources\n",
		"√ no clock skew detected\n",
		"\nStatus check results are √\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckNotInstalled(t *testing.T) {
	c := cluster.Start(t)
	code, out, _ := linkerd(t, c, "check", "-L", "l5d-absent", "-o", "json", "--wait", "1s")
	if code != 1 {
		t.Errorf("check exited %d without a control plane, want 1", code)
	}
	var res healthcheck.JSONResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out)
	}
	last := res.Categories[len(res.Categories)-1]
	failed := last.Checks[len(last.Checks)-1]
	if res.Success || last.Name != healthcheck.LinkerdExistence || failed.Description != "'linkerd-config' config map exists" || failed.Result != healthcheck.StatusError || failed.Hint == "" {
		t.Errorf("want the run to stop at the linkerd-config check with an error and a hint, got:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	c := cluster.Start(t)
	code, out, errOut := linkerd(t, c, "version", "-L", "l5d-version")
	if code != 0 || !strings.HasSuffix(out, "\nServer version: unavailable\n") {
		t.Fatalf("before install: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	ctx := context.Background()
	ns := c.Namespace(t)
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName},
		Data:       map[string]string{k8s.ConfigValuesKey: "linkerdVersion: stable-9.9.9\nclusterDomain: cluster.local\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = linkerd(t, c, "version", "-L", ns)
	if code != 0 || !strings.HasSuffix(out, "\nServer version: stable-9.9.9\n") {
		t.Errorf("installed: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
