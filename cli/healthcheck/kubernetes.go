package healthcheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// MinKubernetesVersion is the oldest Kubernetes API the control plane
// supports (the chart's kubeVersion).
const MinKubernetesVersion = "1.29.0"

// MinKubectlVersion is the oldest kubectl the install instructions work with.
const MinKubectlVersion = "1.29.0"

// MaxClockSkew is how far the CLI's clock may be from the API server's
// before "no clock skew detected" warns: certificate validity is judged
// against these clocks.
const MaxClockSkew = time.Minute

func kubernetesAPICategory() Category {
	return Category{ID: KubernetesAPI, Checks: []Check{
		{
			Description: "can initialize the client",
			HintAnchor:  "k8s-api",
			Fatal:       true,
			Run: func(_ context.Context, s *State) error {
				if s.Kube != nil {
					return nil
				}
				if s.NewClient == nil {
					return errNoClient
				}
				kube, err := s.NewClient()
				if err != nil {
					return err
				}
				s.Kube = kube
				return nil
			},
		},
		{
			Description: "can query the Kubernetes API",
			HintAnchor:  "k8s-api",
			Fatal:       true,
			Run: func(ctx context.Context, s *State) error {
				kube, err := s.client()
				if err != nil {
					return err
				}
				if _, err := kube.Discovery().ServerVersionWithContext(ctx); err != nil {
					return fmt.Errorf("querying the API server's version: %w", err)
				}
				// A namespaced read also proves the credentials are accepted.
				if _, err := kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
					return fmt.Errorf("querying the API server: %w", err)
				}
				return nil
			},
		},
	}}
}

func kubernetesVersionCategory() Category {
	return Category{ID: KubernetesVersion, Checks: []Check{
		{
			Description: "is running the minimum Kubernetes API version",
			HintAnchor:  "k8s-version",
			Run: func(ctx context.Context, s *State) error {
				kube, err := s.client()
				if err != nil {
					return err
				}
				info, err := kube.Discovery().ServerVersionWithContext(ctx)
				if err != nil {
					return fmt.Errorf("querying the API server's version: %w", err)
				}
				return atLeast("Kubernetes API", info.GitVersion, MinKubernetesVersion, "upgrade the cluster")
			},
		},
		{
			Description: "is running the minimum kubectl version",
			HintAnchor:  "kubectl-version",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				if s.KubectlVersion == nil {
					return Skip("no kubectl lookup")
				}
				v, err := s.KubectlVersion(ctx)
				if err != nil {
					return err
				}
				return atLeast("kubectl", v, MinKubectlVersion, "install a newer kubectl")
			},
		},
	}}
}

// atLeast fails when version is older than minimum, naming the fix.
func atLeast(what, version, minimum, fix string) error {
	v, err := utilversion.ParseGeneric(version)
	if err != nil {
		return fmt.Errorf("cannot parse the %s version %q: %w", what, version, err)
	}
	if !v.AtLeast(utilversion.MustParseGeneric(minimum)) {
		return fmt.Errorf("%s is version %s but %s or later is required: %s", what, version, minimum, fix)
	}
	return nil
}

// access is a permission `linkerd install` needs.
type access struct {
	Verb, Group, Resource string
	// Namespaced: checked in the control-plane namespace.
	Namespaced bool
	// Namespace and Name pin the check to one object (overrides Namespaced).
	Namespace, Name string
}

func (a access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Name != "" {
		r += " " + a.Name
	}
	return a.Verb + " " + r
}

// clusterResources are the non-namespaced kinds `linkerd install` creates.
var clusterResources = []access{
	{Verb: "create", Resource: "namespaces"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
	{Verb: "create", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
	{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations"},
}

func preKubernetesSetupCategory() Category {
	canCreate := func(kind, group, resource string) Check {
		return Check{
			Description: "can create " + kind,
			HintAnchor:  "pre-k8s",
			Run: func(ctx context.Context, s *State) error {
				return s.allowed(ctx, access{Verb: "create", Group: group, Resource: resource, Namespaced: true})
			},
		}
	}
	return Category{ID: PreKubernetesSetup, Checks: []Check{
		{
			Description: "control plane namespace does not already exist",
			HintAnchor:  "pre-ns",
			Run: func(ctx context.Context, s *State) error {
				kube, err := s.client()
				if err != nil {
					return err
				}
				ns := s.ControlPlaneNamespace
				_, err = kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					return nil
				case err != nil:
					return fmt.Errorf("looking up namespace %q: %w", ns, err)
				}
				return fmt.Errorf("the %q namespace already exists: Linkerd may already be installed (run 'linkerd check'); otherwise delete the namespace or install into another one with --linkerd-namespace", ns)
			},
		},
		{
			Description: "can create non-namespaced resources",
			HintAnchor:  "pre-k8s-cluster-k8s",
			Run: func(ctx context.Context, s *State) error {
				for _, a := range clusterResources {
					if err := s.allowed(ctx, a); err != nil {
						return err
					}
				}
				return nil
			},
		},
		canCreate("ServiceAccounts", "", "serviceaccounts"),
		canCreate("Services", "", "services"),
		canCreate("Deployments", "apps", "deployments"),
		canCreate("ConfigMaps", "", "configmaps"),
		canCreate("Secrets", "", "secrets"),
		{
			Description: "can read Secrets",
			HintAnchor:  "pre-k8s",
			Run: func(ctx context.Context, s *State) error {
				return s.allowed(ctx, access{Verb: "get", Resource: "secrets", Namespaced: true})
			},
		},
		{
			Description: "can read extension-apiserver-authentication configmap",
			HintAnchor:  "pre-k8s",
			// Only extensions serving an APIService (viz tap) need it.
			Warning: true,
			Run: func(ctx context.Context, s *State) error {
				return s.allowed(ctx, access{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"})
			},
		},
		{
			Description: "no clock skew detected",
			HintAnchor:  "pre-k8s-clock-skew",
			Warning:     true,
			Run:         checkClockSkew,
		},
	}}
}

// allowed asks the API server (SelfSubjectAccessReview) whether the CLI's
// user may perform a, and fails naming the missing permission.
func (s *State) allowed(ctx context.Context, a access) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	attrs := &authorizationv1.ResourceAttributes{Verb: a.Verb, Group: a.Group, Resource: a.Resource, Name: a.Name, Namespace: a.Namespace}
	if a.Namespaced && attrs.Namespace == "" {
		attrs.Namespace = s.ControlPlaneNamespace
	}
	review, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("asking the API server whether you may %s: %w", a, err)
	}
	if review.Status.Allowed {
		return nil
	}
	where := ""
	if attrs.Namespace != "" {
		where = " in namespace " + attrs.Namespace
	}
	msg := fmt.Sprintf("missing permission to %s%s", a, where)
	if reason := strings.TrimSpace(review.Status.Reason + " " + review.Status.EvaluationError); reason != "" {
		msg += " (" + reason + ")"
	}
	return fmt.Errorf("%s: run the install as a user with cluster-admin rights, or have an administrator grant it", msg)
}

// checkClockSkew compares the CLI's clock with the API server's and with
// the nodes' last heartbeats. A heartbeat may be minutes old (kubelets
// report status every few minutes), so only one in the future counts.
func checkClockSkew(ctx context.Context, s *State) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	var skews []string
	if s.ServerTime != nil {
		before := s.now()
		server, err := s.ServerTime(ctx)
		if err != nil {
			return fmt.Errorf("reading the API server's clock: %w", err)
		}
		after := s.now()
		// The server's time, truncated to a second, falls within the request.
		if d := skew(server, before.Add(-time.Second), after.Add(time.Second)); d > MaxClockSkew {
			skews = append(skews, fmt.Sprintf("the API server's clock is %s off this machine's", d.Round(time.Second)))
		}
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		if !apierrors.IsForbidden(err) {
			return fmt.Errorf("listing nodes: %w", err)
		}
	} else {
		now := s.now()
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type != "Ready" || c.LastHeartbeatTime.IsZero() {
					continue
				}
				if ahead := c.LastHeartbeatTime.Sub(now); ahead > MaxClockSkew {
					skews = append(skews, fmt.Sprintf("node %s reported its status %s in this machine's future", n.Name, ahead.Round(time.Second)))
				}
			}
		}
	}
	if len(skews) > 0 {
		return fmt.Errorf("clock skew above %s: %s; synchronize the clocks (NTP)", MaxClockSkew, strings.Join(skews, "; "))
	}
	return nil
}

// skew is how far t is outside [lo, hi].
func skew(t, lo, hi time.Time) time.Duration {
	switch {
	case t.Before(lo):
		return lo.Sub(t)
	case t.After(hi):
		return t.Sub(hi)
	}
	return 0
}
