package localmesh

import (
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/controller/store"
)

func TestCheckServiceAnnotations(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		wantErr  string // "" : accepted
	}{
		{"no annotation", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n", ""},
		{"round-robin", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo, annotations: {balancer.linkerd-go.io/algorithm: round-robin}}\n", ""},
		{"unknown", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo, annotations: {balancer.linkerd-go.io/algorithm: fastest}}\n",
			`service demo/web: balancer.linkerd-go.io/algorithm: unknown algorithm "fastest"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := store.DecodeObjects([]byte(tt.manifest))
			if err != nil {
				t.Fatal(err)
			}
			err = checkServiceAnnotations(dec.Objects)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
