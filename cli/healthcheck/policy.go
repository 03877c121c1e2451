package healthcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
)

// The policy resources the linkerd-policy checks read, at the version they
// are listed with.
var (
	serversGVR              = schema.GroupVersionResource{Group: policy.GroupName, Version: "v1beta1", Resource: "servers"}
	serverAuthorizationsGVR = schema.GroupVersionResource{Group: policy.GroupName, Version: "v1beta1", Resource: "serverauthorizations"}
	authorizationPolicyGVR  = schema.GroupVersionResource{Group: policy.GroupName, Version: "v1alpha1", Resource: "authorizationpolicies"}
	meshTLSAuthnGVR         = schema.GroupVersionResource{Group: policy.GroupName, Version: "v1alpha1", Resource: "meshtlsauthentications"}
	networkAuthnGVR         = schema.GroupVersionResource{Group: policy.GroupName, Version: "v1alpha1", Resource: "networkauthentications"}
)

// policyGVRs are listed in this order; problems are reported in it.
var policyGVRs = []schema.GroupVersionResource{serversGVR, serverAuthorizationsGVR, authorizationPolicyGVR, meshTLSAuthnGVR, networkAuthnGVR}

func linkerdPolicyCategory() Category {
	return Category{ID: LinkerdPolicy, Checks: []Check{
		{
			Description: "policy resources are valid",
			HintAnchor:  "l5d-policy-resources-valid",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				r, err := s.policyResources(ctx)
				if err != nil {
					return err
				}
				return JoinProblems(r.invalid)
			},
		},
		{
			Description: "servers select pods and their ports",
			HintAnchor:  "l5d-policy-servers-select-pods",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				r, err := s.policyResources(ctx)
				if err != nil {
					return err
				}
				return JoinProblems(serverProblems(r))
			},
		},
		{
			Description: "authorizations target existing resources",
			HintAnchor:  "l5d-policy-authorization-targets",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				r, err := s.policyResources(ctx)
				if err != nil {
					return err
				}
				return JoinProblems(authorizationProblems(r))
			},
		},
	}}
}

// policyResources is what the linkerd-policy checks read, once per run.
type policyResources struct {
	servers  []*policy.Server
	saz      []*policy.ServerAuthorization
	aps      []*policy.AuthorizationPolicy
	meshTLS  map[string]bool // namespace/name
	networks map[string]bool // namespace/name
	// pods are the running pods of the checked namespaces.
	pods []corev1.Pod
	// invalid are the resources validation refuses (created while the
	// policy-validator webhook was not there), one line each.
	invalid []string
	// invalidKeys are those resources ("Kind namespace/name"): references
	// to them are not reported again.
	invalidKeys map[string]bool
	// scoped is set when one namespace is checked: references to other
	// namespaces cannot be resolved.
	scoped bool
}

func (s *State) dynamicClient() (dynamic.Interface, error) {
	if s.Dynamic != nil {
		return s.Dynamic, nil
	}
	if s.NewDynamic == nil {
		return nil, Skip("no client for custom resources")
	}
	d, err := s.NewDynamic()
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	s.Dynamic = d
	return d, nil
}

// policyResources lists the policy resources and pods of
// s.DataPlaneNamespace (all namespaces when empty), decoding each resource
// strictly as the policy-validator webhook does.
func (s *State) policyResources(ctx context.Context) (*policyResources, error) {
	if s.policy != nil {
		return s.policy, nil
	}
	kube, err := s.client()
	if err != nil {
		return nil, err
	}
	dyn, err := s.dynamicClient()
	if err != nil {
		return nil, err
	}
	r := &policyResources{meshTLS: map[string]bool{}, networks: map[string]bool{}, invalidKeys: map[string]bool{}, scoped: s.DataPlaneNamespace != ""}
	for _, gvr := range policyGVRs {
		list, err := dyn.Resource(gvr).Namespace(s.DataPlaneNamespace).List(ctx, metav1.ListOptions{})
		switch {
		case apierrors.IsNotFound(err) && gvr == serversGVR:
			return nil, Skip("the policy CRDs are not installed")
		case apierrors.IsNotFound(err):
			continue // older CRDs (2.11 has no AuthorizationPolicy): none of them
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvr.GroupResource(), err)
		}
		items := list.Items
		slices.SortFunc(items, func(a, b unstructured.Unstructured) int {
			return strings.Compare(a.GetNamespace()+"/"+a.GetName(), b.GetNamespace()+"/"+b.GetName())
		})
		for i := range items {
			u := &items[i]
			key := u.GetNamespace() + "/" + u.GetName()
			// Fields the API server adds are not the resource's.
			unstructured.RemoveNestedField(u.Object, "status")
			unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
			data, err := json.Marshal(u.Object)
			if err != nil {
				return nil, fmt.Errorf("encoding %s %s: %w", u.GetKind(), key, err)
			}
			obj, err := policy.Decode(data)
			if err != nil {
				r.invalid = append(r.invalid, fmt.Sprintf("%s %s: %v", u.GetKind(), key, err))
				r.invalidKeys[u.GetKind()+" "+key] = true
				continue
			}
			switch o := obj.(type) {
			case *policy.Server:
				r.servers = append(r.servers, o)
			case *policy.ServerAuthorization:
				r.saz = append(r.saz, o)
			case *policy.AuthorizationPolicy:
				r.aps = append(r.aps, o)
			case *policy.MeshTLSAuthentication:
				r.meshTLS[key] = true
			case *policy.NetworkAuthentication:
				r.networks[key] = true
			}
		}
	}
	pods, err := kube.CoreV1().Pods(s.DataPlaneNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		r.pods = append(r.pods, p)
	}
	slices.SortFunc(r.pods, func(a, b corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	s.policy = r
	return r, nil
}

// serverProblems reports the Servers whose podSelector matches no pod of
// their namespace, and those whose port is a name no container of the
// selected pods declares. A port number needs no declaration: a container
// may listen on ports it does not list.
func serverProblems(r *policyResources) []string {
	var problems []string
	for _, srv := range r.servers {
		key := srv.Namespace + "/" + srv.Name
		if srv.Spec.PodSelector == nil {
			continue // an externalWorkloadSelector: nothing to check here
		}
		var selected []*corev1.Pod
		for i := range r.pods {
			p := &r.pods[i]
			if p.Namespace == srv.Namespace && policy.Selects(srv.Spec.PodSelector, p.Labels) {
				selected = append(selected, p)
			}
		}
		if len(selected) == 0 {
			problems = append(problems, fmt.Sprintf("Server %s: spec.podSelector matches no pod", key))
			continue
		}
		if srv.Spec.Port.Type != intstr.String {
			continue
		}
		var without []string
		for _, p := range selected {
			if !declaresPort(p, srv.Spec.Port.StrVal) {
				without = append(without, p.Name)
			}
		}
		switch {
		case len(without) == len(selected):
			problems = append(problems, fmt.Sprintf("Server %s: spec.port %q is not the name of a container port of any selected pod", key, srv.Spec.Port.StrVal))
		case len(without) > 0:
			problems = append(problems, fmt.Sprintf("Server %s: spec.port %q is not the name of a container port of pods %s", key, srv.Spec.Port.StrVal, strings.Join(without, ", ")))
		}
	}
	return problems
}

func declaresPort(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return true
			}
		}
	}
	return false
}

// authorizationProblems reports ServerAuthorizations and
// AuthorizationPolicies whose target Server, or required authentication,
// does not exist.
func authorizationProblems(r *policyResources) []string {
	servers := map[string]*policy.Server{}
	for _, srv := range r.servers {
		servers[srv.Namespace+"/"+srv.Name] = srv
	}
	var problems []string
	for _, a := range r.saz {
		key := a.Namespace + "/" + a.Name
		ref := a.Spec.Server
		if ref.Name != "" {
			if servers[a.Namespace+"/"+ref.Name] == nil && !r.invalidKeys[policy.KindServer+" "+a.Namespace+"/"+ref.Name] {
				problems = append(problems, fmt.Sprintf("ServerAuthorization %s: spec.server.name: Server %q does not exist", key, ref.Name))
			}
			continue
		}
		found := false
		for _, srv := range r.servers {
			if srv.Namespace == a.Namespace && policy.Selects(ref.Selector, srv.Labels) {
				found = true
				break
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("ServerAuthorization %s: spec.server.selector matches no Server", key))
		}
	}
	for _, p := range r.aps {
		key := p.Namespace + "/" + p.Name
		if t := p.Spec.TargetRef; t.Kind == policy.KindServer && servers[p.Namespace+"/"+t.Name] == nil && !r.invalidKeys[policy.KindServer+" "+p.Namespace+"/"+t.Name] {
			problems = append(problems, fmt.Sprintf("AuthorizationPolicy %s: spec.targetRef: Server %q does not exist", key, t.Name))
		}
		for i, ref := range p.Spec.RequiredAuthenticationRefs {
			ns := ref.Namespace
			if ns == "" {
				ns = p.Namespace
			}
			var known map[string]bool
			switch ref.Kind {
			case policy.KindMeshTLSAuthentication:
				known = r.meshTLS
			case policy.KindNetworkAuthentication:
				known = r.networks
			default:
				continue
			}
			// An authentication in another namespace is only known when
			// every namespace is checked.
			if ns != p.Namespace && r.scoped {
				continue
			}
			if !known[ns+"/"+ref.Name] && !r.invalidKeys[ref.Kind+" "+ns+"/"+ref.Name] {
				problems = append(problems, fmt.Sprintf("AuthorizationPolicy %s: spec.requiredAuthenticationRefs[%d]: %s %s/%s does not exist", key, i, ref.Kind, ns, ref.Name))
			}
		}
	}
	return problems
}
