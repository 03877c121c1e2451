package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

// LinkerdLocalMesh is the category of the local mesh's own state, in place
// of the kubernetes-api ones when `linkerd check` targets a local mesh.
const LinkerdLocalMesh = "linkerd-local-mesh"

// LocalMesh is what the local mesh's checks read of a mesh
// (*localmesh.Mesh).
type LocalMesh interface {
	StateDir() string
	Status(ctx context.Context) ([]localmesh.WorkloadStatus, error)
	Identity() (*localmesh.IdentityPEM, error)
	Prerequisites(ctx context.Context) []localmesh.Problem
}

// LocalPreCategories are `linkerd check --pre` for a local mesh: what
// `linkerd local up` needs of this machine.
func LocalPreCategories(m LocalMesh) []Category {
	return []Category{{ID: LinkerdLocalMesh, Checks: []Check{{
		Description: "the machine can run a local mesh",
		HintAnchor:  "l5d-local-prerequisites",
		Run: func(ctx context.Context, _ *State) error {
			var problems []string
			var optional []string
			for _, p := range m.Prerequisites(ctx) {
				line := fmt.Sprintf("%s (fix: %s)", p.What, p.Fix)
				if p.Optional {
					optional = append(optional, line)
				} else {
					problems = append(problems, line)
				}
			}
			if len(problems) > 0 {
				return JoinProblems(append(problems, optional...))
			}
			if len(optional) > 0 {
				return Note("optional: %s", strings.Join(optional, "; "))
			}
			return nil
		},
	}}}}
}

// LocalCategories are `linkerd check` for the local mesh m: it is up, the
// control plane's pods are ready, its identity material is sound, versions
// match; with proxy, the workloads' proxies and applications too.
func LocalCategories(m LocalMesh, proxy bool) []Category {
	l := &localChecks{m: m}
	cats := []Category{
		{ID: LinkerdLocalMesh, Checks: []Check{{
			Description: "the local mesh is up",
			HintAnchor:  "l5d-local-up",
			Fatal:       true,
			Run: func(ctx context.Context, _ *State) error {
				_, err := m.Status(ctx)
				if errors.Is(err, localmesh.ErrNotUp) {
					return fmt.Errorf("no local mesh is up at %s: start one with linkerd local up (or linkerd demo)", m.StateDir())
				}
				return err
			},
		}}},
		{ID: LinkerdExistence, Checks: []Check{{
			Description: "control plane pods are ready",
			HintAnchor:  "l5d-api-control-ready",
			Retry:       true,
			Fatal:       true,
			Run: func(ctx context.Context, _ *State) error {
				return l.podsReady(ctx, func(w localmesh.WorkloadStatus) bool { return w.ControlPlane })
			},
		}}},
		identityCategory(l.loadIdentity),
		linkerdVersionCategory(),
		controlPlaneVersionCategory(),
	}
	if proxy {
		cats = append(cats, Category{ID: LinkerdDataPlane, Checks: []Check{{
			Description: "data plane proxies are ready",
			HintAnchor:  "l5d-data-plane-ready",
			Retry:       true,
			Run: func(ctx context.Context, s *State) error {
				return l.podsReady(ctx, func(w localmesh.WorkloadStatus) bool {
					return !w.ControlPlane && (s.DataPlaneNamespace == "" || w.Namespace == s.DataPlaneNamespace)
				})
			},
		}}})
	}
	return cats
}

type localChecks struct{ m LocalMesh }

// podsReady checks that the workloads pick selects have every process
// running, a ready proxy and, for applications, a ready app.
func (l *localChecks) podsReady(ctx context.Context, pick func(localmesh.WorkloadStatus) bool) error {
	st, err := l.m.Status(ctx)
	if err != nil {
		return err
	}
	var problems []string
	n := 0
	for _, w := range st {
		if !pick(w) {
			continue
		}
		n++
		switch {
		case len(w.Dead) > 0:
			slices.Sort(w.Dead)
			problems = append(problems, fmt.Sprintf("pod %s: not running: %s", w.Key(), strings.Join(w.Dead, ", ")))
		case !w.ProxyReady:
			problems = append(problems, fmt.Sprintf("pod %s: the proxy is not ready", w.Key()))
		case w.Workload.App != nil && !w.App.Ready:
			problems = append(problems, fmt.Sprintf("pod %s: the application does not listen on its port yet", w.Key()))
		}
	}
	if n == 0 {
		return errors.New("no such pods in the local mesh")
	}
	return JoinProblems(problems)
}

// loadIdentity reads the mesh's trust anchors and issuer, as loadIdentity
// does a cluster's.
func (l *localChecks) loadIdentity(_ context.Context, s *State) error {
	id, err := l.m.Identity()
	if err != nil {
		return err
	}
	anchors, err := pki.DecodeCertificatesPEM(id.Anchors)
	if err != nil {
		return fmt.Errorf("the trust anchors (%s): %w", id.Paths[0], err)
	}
	chain, err := parseIssuer(id.IssuerCert, id.IssuerKey, id.Paths[1], id.Paths[2])
	if err != nil {
		return err
	}
	s.idm = &identityMaterial{anchors: anchors, issuerChain: chain}
	return nil
}
