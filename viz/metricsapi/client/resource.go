package client

import (
	"fmt"
	"strings"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// Resource kinds, as the API spells them.
const (
	KindNamespace   = "namespace"
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
	KindDaemonSet   = "daemonset"
	KindJob         = "job"
	KindPod         = "pod"
	KindService     = "service"
	KindAuthority   = "authority"
)

// Kinds lists every kind the API answers for.
var Kinds = []string{KindNamespace, KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindPod, KindService, KindAuthority}

var kindAliases = map[string]string{
	"ns": KindNamespace, "namespaces": KindNamespace,
	"deploy": KindDeployment, "deployments": KindDeployment,
	"sts": KindStatefulSet, "statefulsets": KindStatefulSet,
	"ds": KindDaemonSet, "daemonsets": KindDaemonSet,
	"jobs": KindJob,
	"po":   KindPod, "pods": KindPod,
	"svc": KindService, "services": KindService,
	"au": KindAuthority, "authorities": KindAuthority,
}

// CanonicalKind returns the API's name of a kind given as users type it
// ("deploy", "deployments", "Deployment", "po", "svc", ...).
func CanonicalKind(s string) (string, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	for _, c := range Kinds {
		if k == c {
			return c, nil
		}
	}
	if c, ok := kindAliases[k]; ok {
		return c, nil
	}
	return "", fmt.Errorf("unknown resource kind %q (one of %s)", s, strings.Join(Kinds, ", "))
}

// ShortKind is the abbreviation Linkerd's CLI prints in "deploy/web".
func ShortKind(kind string) string {
	switch kind {
	case KindDeployment:
		return "deploy"
	case KindStatefulSet:
		return "sts"
	case KindDaemonSet:
		return "ds"
	case KindPod:
		return "po"
	case KindService:
		return "svc"
	case KindNamespace:
		return "ns"
	case KindAuthority:
		return "au"
	}
	return kind
}

// ParseResource parses "deploy", "deploy/web" or the two arguments
// "deploy" "web" into a Resource in namespace ns.
func ParseResource(ns string, args ...string) (*vizv1.Resource, error) {
	var kind, name string
	switch len(args) {
	case 1:
		kind, name, _ = strings.Cut(args[0], "/")
		if strings.HasSuffix(args[0], "/") {
			return nil, fmt.Errorf("resource %q names no %s", args[0], kind)
		}
	case 2:
		if strings.Contains(args[0], "/") {
			return nil, fmt.Errorf("give either KIND NAME or KIND/NAME, not %q %q", args[0], args[1])
		}
		kind, name = args[0], args[1]
	default:
		return nil, fmt.Errorf("expected a resource (KIND, KIND/NAME or KIND NAME), got %d arguments", len(args))
	}
	k, err := CanonicalKind(kind)
	if err != nil {
		return nil, err
	}
	r := &vizv1.Resource{Kind: k, Namespace: ns, Name: name}
	if k == KindNamespace {
		r.Namespace = ""
	}
	return r, nil
}

// SuccessRate is the share of successful requests, ok false without requests.
func SuccessRate(s *vizv1.Stats) (rate float64, ok bool) {
	if s == nil {
		return 0, false
	}
	total := s.GetSuccessCount() + s.GetFailureCount()
	if total <= 0 {
		return 0, false
	}
	return s.GetSuccessCount() / total, true
}

// RPS is the request rate over the window.
func RPS(s *vizv1.Stats) float64 {
	if s == nil || s.GetWindowSeconds() <= 0 {
		return 0
	}
	return (s.GetSuccessCount() + s.GetFailureCount()) / s.GetWindowSeconds()
}
