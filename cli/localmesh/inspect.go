package localmesh

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// What the CLI's commands that inspect a running mesh (linkerd check,
// version, diagnostics) read of it. Each returns ErrNotUp when no mesh is up
// at stateDir.

// ServerVersion returns the version of the mesh's control plane.
func ServerVersion(stateDir string) (string, error) {
	s, err := loadState(statePathOf(stateDir))
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", ErrNotUp
	}
	if s.Version == "" {
		return "", fmt.Errorf("the local mesh at %s predates version records: bring it down and up again", stateDir)
	}
	return s.Version, nil
}

// DestinationAddr returns the address of the destination service's gRPC API.
func DestinationAddr(stateDir string) (string, error) {
	return controlPlaneAddr(stateDir, k8s.DestinationGRPCPort)
}

// PolicyAddr returns the address of the policy controller's gRPC API.
func PolicyAddr(stateDir string) (string, error) {
	return controlPlaneAddr(stateDir, k8s.PolicyGRPCPort)
}

func controlPlaneAddr(stateDir string, port int) (string, error) {
	w, err := FindWorkload(stateDir, ControlPlaneNamespace, destName)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(w.IP.String(), strconv.Itoa(port)), nil
}

// IdentityPEM is the mesh's identity material as written at Up.
type IdentityPEM struct {
	// Anchors is the trust anchors' bundle.
	Anchors []byte
	// IssuerCert and IssuerKey are the identity service's issuer.
	IssuerCert, IssuerKey []byte
	// Paths names the files, for messages (same order).
	Paths [3]string
}

// Identity reads the mesh's trust anchors and issuer.
func (m *Mesh) Identity() (*IdentityPEM, error) {
	id := &IdentityPEM{Paths: [3]string{
		m.path("identity", "ca-bundle.crt"),
		m.path("identity", "issuer", "crt.pem"),
		m.path("identity", "issuer", "key.pem"),
	}}
	for i, dst := range []*[]byte{&id.Anchors, &id.IssuerCert, &id.IssuerKey} {
		b, err := os.ReadFile(id.Paths[i])
		if err != nil {
			return nil, fmt.Errorf("the local mesh's identity: %w", err)
		}
		*dst = b
	}
	return id, nil
}
