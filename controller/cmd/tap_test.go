package cmd

import (
	"strings"
	"testing"
)

func TestTapFlags(t *testing.T) {
	const id = "-identity-local-name=tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"-pods-file=/tmp/pods.json"}, "-identity-local-name is required"},
		{[]string{id, "-tap-port=0"}, "is not a port"},
		{[]string{id, "-pods-file=/tmp/pods.json"}, "-pods-file needs -trust-anchors"},
		// The local mesh's: pods from a file, no Kubernetes API.
		{[]string{id, "-pods-file=/tmp/pods.json", "-trust-anchors=/tmp/ca.pem"}, ""},
	}
	for _, tt := range tests {
		o := &tapOptions{}
		parseFlags(t, o.addFlags, tt.args...)
		c, err := newTapComponent(o, quiet)
		if tt.err == "" {
			if err != nil || c.kube != nil {
				t.Errorf("%v: %v (kube client %v), want a component without the Kubernetes API", tt.args, err, c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) || !isUsageError(err) {
			t.Errorf("%v: err = %v, want a usage error with %q", tt.args, err, tt.err)
		}
	}
}
