// Package vizcheck holds the viz extension's checks, named as Linkerd's: the
// linkerd-viz category (the extension's namespace, RBAC, pods and proxies,
// Prometheus, the metrics API) and, with --proxy, linkerd-viz-data-plane
// (the meshed pods' metrics are in Prometheus). `linkerd viz check` runs
// them after the kubernetes-api checks; `linkerd check` runs them when the
// extension is installed.
package vizcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/cli/healthcheck"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// Category IDs, as Linkerd names them.
const (
	VizCategory          = "linkerd-viz"
	VizDataPlaneCategory = "linkerd-viz-data-plane"
)

// Names of the extension's objects, as the linkerd-viz chart renders them.
const (
	// DefaultNamespace is where `linkerd viz install` installs the extension.
	DefaultNamespace = "linkerd-viz"
	// ExtensionLabel marks the extension's namespace (and every object of
	// it) with ExtensionName.
	ExtensionLabel = "linkerd.io/extension"
	ExtensionName  = "viz"
	// ComponentLabel names a viz object's component (metrics-api, web,
	// prometheus).
	ComponentLabel = "component"

	MetricsAPIName       = "metrics-api"
	WebName              = "web"
	TapName              = "tap"
	TapInjectorName      = "tap-injector"
	PrometheusName       = "prometheus"
	PrometheusConfigName = "prometheus-config"
	// PrometheusPort is the in-cluster Prometheus' port.
	PrometheusPort = 9090
	// MetricsAPIAdminPort serves the metrics API's /ready.
	MetricsAPIAdminPort = 9995
)

// ClusterRoleName is the name of a viz component's ClusterRole (and
// ClusterRoleBinding) when the extension is in namespace ns.
func ClusterRoleName(ns, component string) string {
	return fmt.Sprintf("linkerd-%s-%s", ns, component)
}

// Checker runs the viz checks; its state is filled in by the first check.
type Checker struct {
	// Namespace is the extension's namespace (--viz-namespace); empty
	// means the namespace labelled linkerd.io/extension=viz, else
	// linkerd-viz.
	Namespace string
	// Optional skips every viz check when the extension is not installed
	// (`linkerd check`), instead of failing.
	Optional bool
	// MetricsAPI, when set, reaches the metrics API in the extension's
	// namespace (the CLI port-forwards to it); the self-check then asks the
	// server's own SelfCheck besides its readiness.
	MetricsAPI func(ctx context.Context, ns string) (client.API, func(), error)

	ns         string // found by the first check
	absent     bool   // Optional and not installed
	prometheus *appsv1.Deployment
}

// FindNamespace returns the viz extension's namespace: want if given (it
// must exist), else the one labelled linkerd.io/extension=viz, else
// linkerd-viz if it exists. A missing extension is an error that
// apierrors.IsNotFound recognises.
func FindNamespace(ctx context.Context, kube kubernetes.Interface, want string) (string, error) {
	if want != "" {
		if _, err := kube.CoreV1().Namespaces().Get(ctx, want, metav1.GetOptions{}); err != nil {
			return "", fmt.Errorf("the viz namespace %q: %w", want, err)
		}
		return want, nil
	}
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{ExtensionLabel: ExtensionName}.String(),
	})
	if err != nil {
		return "", fmt.Errorf("looking for the viz extension's namespace: %w", err)
	}
	switch len(list.Items) {
	case 0:
	case 1:
		return list.Items[0].Name, nil
	default:
		var names []string
		for _, n := range list.Items {
			names = append(names, n.Name)
		}
		return "", fmt.Errorf("several namespaces are labelled %s=%s (%s): choose one with --viz-namespace", ExtensionLabel, ExtensionName, strings.Join(names, ", "))
	}
	_, err = kube.CoreV1().Namespaces().Get(ctx, DefaultNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("could not find the linkerd-viz extension: no namespace labelled %s=%s: %w", ExtensionLabel, ExtensionName, err)
	}
	if err != nil {
		return "", fmt.Errorf("looking for the viz extension's namespace: %w", err)
	}
	return DefaultNamespace, nil
}

// errAbsent skips the remaining checks of an optional, absent extension.
var errAbsent = healthcheck.Skip("the viz extension is not installed")

// Categories returns the viz checks; with proxy, the data-plane ones too.
func (c *Checker) Categories(proxy bool) []healthcheck.Category {
	cats := []healthcheck.Category{c.vizCategory()}
	if proxy {
		cats = append(cats, c.dataPlaneCategory())
	}
	return cats
}

// check wraps a check's function: it runs only when the extension was
// found, with the client.
func (c *Checker) check(run func(ctx context.Context, kube kubernetes.Interface, s *healthcheck.State) error) func(context.Context, *healthcheck.State) error {
	return func(ctx context.Context, s *healthcheck.State) error {
		if c.absent {
			return errAbsent
		}
		if c.ns == "" {
			return errors.New("the viz extension's namespace is unknown: the first linkerd-viz check did not pass")
		}
		if s.Kube == nil {
			return errors.New("no Kubernetes client: the kubernetes-api checks did not pass")
		}
		return run(ctx, s.Kube, s)
	}
}

func (c *Checker) vizCategory() healthcheck.Category {
	return healthcheck.Category{ID: VizCategory, Checks: append([]healthcheck.Check{
		{
			Description: "linkerd-viz Namespace exists",
			HintAnchor:  "l5d-viz-ns-exists",
			Fatal:       true,
			Run: func(ctx context.Context, s *healthcheck.State) error {
				if s.Kube == nil {
					return errors.New("no Kubernetes client: the kubernetes-api checks did not pass")
				}
				ns, err := FindNamespace(ctx, s.Kube, c.Namespace)
				if apierrors.IsNotFound(err) && c.Optional && c.Namespace == "" {
					c.absent = true
					return errAbsent
				}
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("%w; install it with: linkerd viz install | kubectl apply -f -", err)
				}
				if err != nil {
					return err
				}
				c.ns = ns
				p, err := s.Kube.AppsV1().Deployments(ns).Get(ctx, PrometheusName, metav1.GetOptions{})
				switch {
				case err == nil:
					c.prometheus = p
				case !apierrors.IsNotFound(err):
					return fmt.Errorf("reading deployment %s/%s: %w", ns, PrometheusName, err)
				}
				return nil
			},
		},
		{
			Description: "linkerd-viz ClusterRoles exist",
			HintAnchor:  "l5d-viz-cr-exists",
			Fatal:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				return missing("ClusterRole", c.clusterRBACNames(), func(name string) error {
					_, err := kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
					return err
				})
			}),
		},
		{
			Description: "linkerd-viz ClusterRoleBindings exist",
			HintAnchor:  "l5d-viz-crb-exists",
			Fatal:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				return missing("ClusterRoleBinding", c.clusterRBACNames(), func(name string) error {
					_, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
					return err
				})
			}),
		},
		{
			Description: "viz extension pods are running",
			HintAnchor:  "l5d-viz-pods-running",
			Retry:       true,
			Fatal:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				pods, err := c.pods(ctx, kube)
				if err != nil {
					return err
				}
				var problems []string
				for _, comp := range c.components() {
					ready := 0
					for i, p := range pods {
						if p.Labels[ComponentLabel] != comp {
							continue
						}
						if ok, why := healthcheck.PodReady(&pods[i]); ok {
							ready++
						} else {
							problems = append(problems, why)
						}
					}
					if ready == 0 {
						problems = append(problems, fmt.Sprintf("no running pods for %q", comp))
					}
				}
				return healthcheck.JoinProblems(problems)
			}),
		},
		{
			Description: "linkerd-viz pods are injected",
			HintAnchor:  "l5d-viz-pods-injection",
			Warning:     true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				pods, err := c.pods(ctx, kube)
				if err != nil {
					return err
				}
				var bare []string
				for i := range pods {
					if k8s.ProxyContainer(&pods[i]) == nil {
						bare = append(bare, pods[i].Name)
					}
				}
				if len(bare) > 0 {
					return fmt.Errorf("pods without a %s container: %s; is the proxy injector running? Restart them once it is (kubectl -n %s rollout restart deploy)", k8s.ProxyContainerName, strings.Join(bare, ", "), c.ns)
				}
				return nil
			}),
		},
		{
			Description: "viz extension proxies are healthy",
			HintAnchor:  "l5d-viz-proxy-healthy",
			Retry:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				pods, err := c.pods(ctx, kube)
				if err != nil {
					return err
				}
				var problems []string
				for i := range pods {
					if k8s.ProxyContainer(&pods[i]) == nil {
						continue
					}
					if ok, why := healthcheck.ProxyReady(&pods[i]); !ok {
						problems = append(problems, why)
					}
				}
				return healthcheck.JoinProblems(problems)
			}),
		},
		{
			Description: "viz extension proxies and cli versions match",
			HintAnchor:  "l5d-viz-proxy-cli-version",
			Warning:     true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, s *healthcheck.State) error {
				pods, err := c.pods(ctx, kube)
				if err != nil {
					return err
				}
				return healthcheck.ProxyVersionsMatch(pods, s.CLIVersion)
			}),
		},
		{
			Description: "prometheus is installed and configured correctly",
			HintAnchor:  "l5d-viz-prometheus",
			Warning:     true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				if c.prometheus == nil {
					u, err := c.prometheusURL(ctx, kube)
					if err != nil {
						return err
					}
					return healthcheck.Note("the extension uses the Prometheus at %s", u)
				}
				name := ClusterRoleName(c.ns, PrometheusName)
				var problems []string
				if _, err := kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); err != nil {
					problems = append(problems, fmt.Sprintf("ClusterRole %s: %v", name, err))
				}
				if _, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{}); err != nil {
					problems = append(problems, fmt.Sprintf("ClusterRoleBinding %s: %v", name, err))
				}
				cm, err := kube.CoreV1().ConfigMaps(c.ns).Get(ctx, PrometheusConfigName, metav1.GetOptions{})
				switch {
				case err != nil:
					problems = append(problems, fmt.Sprintf("ConfigMap %s/%s: %v", c.ns, PrometheusConfigName, err))
				case !strings.Contains(cm.Data["prometheus.yml"], "job_name: "+client.ProxyScrapeJob):
					problems = append(problems, fmt.Sprintf("ConfigMap %s/%s has no %s scrape job", c.ns, PrometheusConfigName, client.ProxyScrapeJob))
				}
				return healthcheck.JoinProblems(problems)
			}),
		},
		{
			Description: "prometheus is reachable",
			HintAnchor:  "l5d-viz-prometheus-reachable",
			Retry:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				if c.prometheus == nil {
					return healthcheck.Skip("external Prometheus: the metrics API reaches it")
				}
				_, err := QueryPrometheus(ctx, kube, c.ns, "up")
				return err
			}),
		},
		{
			Description: "viz extension self-check",
			HintAnchor:  "l5d-api-control-api",
			Retry:       true,
			Fatal:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				if err := c.metricsAPIReady(ctx, kube); err != nil {
					return err
				}
				return c.selfCheck(ctx)
			}),
		},
	}, c.tapChecks()...)}
}

func (c *Checker) dataPlaneCategory() healthcheck.Category {
	return healthcheck.Category{ID: VizDataPlaneCategory, Checks: []healthcheck.Check{
		{
			Description: "data plane namespace exists",
			HintAnchor:  "l5d-data-plane-exists",
			Fatal:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, s *healthcheck.State) error {
				if s.DataPlaneNamespace == "" {
					return healthcheck.Skip("all namespaces")
				}
				_, err := kube.CoreV1().Namespaces().Get(ctx, s.DataPlaneNamespace, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("the namespace %q does not exist", s.DataPlaneNamespace)
				}
				return err
			}),
		},
		{
			Description: "data plane proxy metrics are present in Prometheus",
			HintAnchor:  "l5d-data-plane-prom",
			Warning:     true,
			Retry:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, s *healthcheck.State) error {
				if c.prometheus == nil {
					return healthcheck.Skip("external Prometheus: not reachable from the CLI")
				}
				return c.proxyMetricsPresent(ctx, kube, s)
			}),
		},
		c.tapEnabledCheck(),
	}}
}

// components are the viz deployments the checks expect.
func (c *Checker) components() []string {
	comps := []string{MetricsAPIName, WebName, TapName, TapInjectorName}
	if c.prometheus != nil {
		comps = append(comps, PrometheusName)
	}
	return comps
}

// clusterRBACNames are the ClusterRoles (and bindings) of the extension.
func (c *Checker) clusterRBACNames() []string {
	return []string{ClusterRoleName(c.ns, MetricsAPIName), ClusterRoleName(c.ns, TapName), ClusterRoleName(c.ns, TapName+"-injector")}
}

// pods lists the extension's pods that are not terminating.
func (c *Checker) pods(ctx context.Context, kube kubernetes.Interface) ([]corev1.Pod, error) {
	list, err := kube.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{ExtensionLabel: ExtensionName}.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing pods in %s: %w", c.ns, err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods, nil
}

// prometheusURL returns the -prometheus-url the metrics API runs with.
func (c *Checker) prometheusURL(ctx context.Context, kube kubernetes.Interface) (string, error) {
	d, err := kube.AppsV1().Deployments(c.ns).Get(ctx, MetricsAPIName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("no %s deployment, and so no Prometheus URL: %w", MetricsAPIName, err)
	}
	for _, ctr := range d.Spec.Template.Spec.Containers {
		for _, a := range ctr.Args {
			if u, ok := strings.CutPrefix(a, "-prometheus-url="); ok {
				return u, nil
			}
		}
	}
	return "", fmt.Errorf("neither a %s deployment nor a -prometheus-url argument of %s in %s", PrometheusName, MetricsAPIName, c.ns)
}

// metricsAPIReady asks each metrics-api pod's admin server whether it is
// ready (through the API server's pod proxy): at least one must be.
func (c *Checker) metricsAPIReady(ctx context.Context, kube kubernetes.Interface) error {
	pods, err := c.pods(ctx, kube)
	if err != nil {
		return err
	}
	var problems []string
	for _, p := range pods {
		if p.Labels[ComponentLabel] != MetricsAPIName || p.Status.Phase != corev1.PodRunning {
			continue
		}
		body, err := kube.CoreV1().Pods(c.ns).ProxyGet("http", p.Name, fmt.Sprint(MetricsAPIAdminPort), "/ready", nil).DoRaw(ctx)
		if err == nil {
			return nil
		}
		problems = append(problems, fmt.Sprintf("%s: not ready: %v %s", p.Name, err, strings.TrimSpace(string(body))))
	}
	if len(problems) == 0 {
		return fmt.Errorf("no running %s pod in %s", MetricsAPIName, c.ns)
	}
	return healthcheck.JoinProblems(problems)
}

// selfCheck asks the metrics API's SelfCheck, when c.MetricsAPI can reach
// it: failed results fail the check, warnings are its note.
func (c *Checker) selfCheck(ctx context.Context) error {
	if c.MetricsAPI == nil {
		return nil
	}
	api, done, err := c.MetricsAPI(ctx, c.ns)
	if err != nil {
		return err
	}
	defer done()
	return askSelfCheck(ctx, api)
}

// askSelfCheck asks api's SelfCheck and turns its answer into a check's outcome.
func askSelfCheck(ctx context.Context, api client.API) error {
	resp, err := api.SelfCheck(ctx, &vizv1.SelfCheckRequest{})
	if err != nil {
		return fmt.Errorf("metrics API self-check: %w", err)
	}
	return SelfCheckResult(resp)
}

// SelfCheckResult turns a metrics API SelfCheck answer into a check's
// outcome: an error naming every failed check, else a note naming the
// warnings, else nil.
func SelfCheckResult(resp *vizv1.SelfCheckResponse) error {
	var failed, warned []string
	for _, r := range resp.GetResults() {
		line := r.GetDescription()
		if m := r.GetMessage(); m != "" {
			line += ": " + m
		}
		switch r.GetStatus() {
		case vizv1.CheckResult_OK:
		case vizv1.CheckResult_WARNING:
			warned = append(warned, line)
		default:
			failed = append(failed, line)
		}
	}
	if len(failed) > 0 {
		return healthcheck.JoinProblems(failed)
	}
	if len(warned) > 0 {
		return healthcheck.Note("%s", strings.Join(warned, "; "))
	}
	return nil
}

// proxyMetricsPresent checks that Prometheus scrapes every meshed pod's
// proxy (of the data-plane namespace, or all).
func (c *Checker) proxyMetricsPresent(ctx context.Context, kube kubernetes.Interface, s *healthcheck.State) error {
	list, err := kube.CoreV1().Pods(s.DataPlaneNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{k8s.ControllerNSLabel: s.ControlPlaneNamespace}.String(),
	})
	if err != nil {
		return fmt.Errorf("listing meshed pods: %w", err)
	}
	sel := fmt.Sprintf(`job=%q`, client.ProxyScrapeJob)
	if s.DataPlaneNamespace != "" {
		sel += fmt.Sprintf(`,namespace=%q`, s.DataPlaneNamespace)
	}
	samples, err := QueryPrometheus(ctx, kube, c.ns, fmt.Sprintf("max by (namespace, pod) (up{%s})", sel))
	if err != nil {
		return err
	}
	up := map[string]bool{}
	for _, smp := range samples {
		up[smp.Metric["namespace"]+"/"+smp.Metric["pod"]] = smp.Value == "1"
	}
	var missingPods []string
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || k8s.ProxyContainer(&p) == nil {
			continue
		}
		if !up[p.Namespace+"/"+p.Name] {
			missingPods = append(missingPods, p.Namespace+"/"+p.Name)
		}
	}
	if len(missingPods) > 0 {
		slices.Sort(missingPods)
		return fmt.Errorf("data plane metrics not found for %s", strings.Join(missingPods, ", "))
	}
	return nil
}

// Sample is one series of an instant-vector query's result.
type Sample struct {
	Metric map[string]string
	// Value is the sample's value as Prometheus writes it ("1", "0.5").
	Value string
}

// QueryPrometheus runs an instant PromQL query against the extension's
// Prometheus in namespace ns, through the API server's service proxy, and
// returns the resulting vector.
func QueryPrometheus(ctx context.Context, kube kubernetes.Interface, ns, query string) ([]Sample, error) {
	body, err := kube.CoreV1().Services(ns).
		ProxyGet("http", PrometheusName, fmt.Sprint(PrometheusPort), "/api/v1/query", map[string]string{"query": query}).
		DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("querying prometheus %s/%s (%s): %w", ns, PrometheusName, url.QueryEscape(query), err)
	}
	return ParseQueryResponse(body)
}

// ParseQueryResponse decodes a Prometheus /api/v1/query response holding
// an instant vector.
func ParseQueryResponse(body []byte) ([]Sample, error) {
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("prometheus answered something else than a query result: %w", err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("prometheus query failed: %s", resp.Error)
	}
	if resp.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query returned a %s, want a vector", resp.Data.ResultType)
	}
	out := make([]Sample, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		v, _ := r.Value[1].(string)
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// missing fails naming the objects that get reports as not found.
func missing(kind string, names []string, get func(name string) error) error {
	var absent []string
	for _, n := range names {
		err := get(n)
		switch {
		case apierrors.IsNotFound(err):
			absent = append(absent, n)
		case err != nil:
			return fmt.Errorf("reading %s %s: %w", kind, n, err)
		}
	}
	if len(absent) > 0 {
		return fmt.Errorf("missing %s: %s", kind+plural(len(absent)), strings.Join(absent, ", "))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// LocalCategory is the viz check of a local mesh: the metrics API that
// dial reaches answers its SelfCheck. A mesh without a metrics API (no
// Prometheus on the machine) skips it with a note.
func LocalCategory(dial func(ctx context.Context) (client.API, func(), error)) healthcheck.Category {
	return healthcheck.Category{ID: VizCategory, Checks: []healthcheck.Check{{
		Description: "viz extension self-check",
		HintAnchor:  "l5d-api-control-api",
		Retry:       true,
		Run: func(ctx context.Context, _ *healthcheck.State) error {
			api, done, err := dial(ctx)
			if err != nil {
				return healthcheck.Note("%v", err)
			}
			defer done()
			return askSelfCheck(ctx, api)
		},
	}}}
}
