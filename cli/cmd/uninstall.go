package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/version"
)

func newCmdUninstall(global *GlobalOptions, _ Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Output Kubernetes resources to uninstall the Linkerd control plane",
		Long: `Output Kubernetes resources to uninstall the Linkerd control plane.

Lists the control plane's objects that exist in the cluster (those its
installation rendered, from its linkerd-config values) and the Linkerd CRDs,
last, for kubectl to delete:

  linkerd uninstall | kubectl delete -f -

Deleting the CRDs deletes every ServiceProfile and policy resource too.
Workloads stay meshed until their pods are recreated without the proxy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUninstall(cmd.Context(), cmd.OutOrStdout(), global)
		},
	}
	return cmd
}

// placeholderPEM stands for certificates and keys when rendering only to
// learn the names of what an installation created.
const placeholderPEM = "-----BEGIN PLACEHOLDER-----\n-----END PLACEHOLDER-----\n"

func runUninstall(ctx context.Context, stdout io.Writer, global *GlobalOptions) error {
	ns := global.LinkerdNamespace
	cfg, err := k8s.LoadRESTConfig(global.Kubeconfig, global.KubeContext)
	if err != nil {
		return err
	}
	cfg.UserAgent = "linkerd/cli " + version.Version
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	// The installation's own values name what it created; without them
	// (a partial install), the defaults name the usual objects.
	vals, err := installedValues(ctx, kube, ns)
	if err != nil && !errors.Is(err, errNotInstalled) {
		return err
	}
	if vals == nil {
		vals = map[string]any{}
	}
	vals["controllerNamespace"] = ns
	if _, ok := vals["installNamespace"]; !ok {
		// As `linkerd install` renders it: the namespace goes too.
		vals["installNamespace"] = true
	}
	pems := []string{"identityTrustAnchorsPEM", "identity.issuer.tls.crtPEM", "identity.issuer.tls.keyPEM"}
	for _, w := range webhookTLSs {
		pems = append(pems, w.values+".crtPEM", w.values+".keyPEM", w.values+".caBundle")
	}
	for _, p := range pems {
		if chartvalues.String(vals, p) == "" {
			chartvalues.Set(vals, p, placeholderPEM)
		}
	}
	controlPlane, err := renderChart(charts.ControlPlane, vals, "linkerd-control-plane", ns)
	if err != nil {
		return err
	}
	crds, err := renderChart(charts.CRDs, nil, "linkerd-crds", ns)
	if err != nil {
		return err
	}

	present, err := existingObjects(ctx, kube, dyn, append(controlPlane, crds...))
	if err != nil {
		return err
	}
	if len(present) == 0 {
		return fmt.Errorf("no Linkerd resources found for the control plane in the %s namespace: nothing to uninstall", ns)
	}
	return writeDeleteList(stdout, present)
}

// existingObjects returns those of docs that exist in the cluster.
func existingObjects(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, docs []manifest) ([]manifest, error) {
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	ctx, cancel := context.WithTimeout(ctx, clusterCheckTimeout)
	defer cancel()
	var present []manifest
	for _, d := range docs {
		ok, err := objectExists(ctx, dyn, mapper, d)
		if err != nil {
			return nil, err
		}
		if ok {
			present = append(present, d)
		}
	}
	return present, nil
}

// writeDeleteList writes the objects' kinds and names, in deletion order
// (uninstallRank), for `kubectl delete -f -`.
func writeDeleteList(stdout io.Writer, present []manifest) error {
	slices.SortStableFunc(present, func(a, b manifest) int {
		if c := uninstallRank(a) - uninstallRank(b); c != 0 {
			return c
		}
		return compareManifests(a, b)
	})
	var buf bytes.Buffer
	for _, d := range present {
		fmt.Fprintf(&buf, "---\napiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n", d.APIVersion, d.Kind, d.Name)
		if d.Namespace != "" {
			fmt.Fprintf(&buf, "  namespace: %s\n", d.Namespace)
		}
	}
	_, err := stdout.Write(buf.Bytes())
	return err
}

// uninstallRank orders deletions: the webhooks first, so that no API
// request waits on a webhook being deleted; then the namespaced objects,
// the cluster-wide RBAC, the namespace, and the CRDs last.
func uninstallRank(d manifest) int {
	switch {
	case d.Kind == "MutatingWebhookConfiguration" || d.Kind == "ValidatingWebhookConfiguration":
		return 0
	case d.Namespace != "":
		return 1
	case d.Kind == "Namespace":
		return 3
	case d.Kind == "CustomResourceDefinition":
		return 4
	}
	return 2
}

// objectExists reports whether the cluster has the object d names. A kind
// the cluster does not serve means the object does not exist.
func objectExists(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, d manifest) (bool, error) {
	gv, err := schema.ParseGroupVersion(d.APIVersion)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", d.Kind, d.Name, err)
	}
	mapping, err := mapper.RESTMapping(gv.WithKind(d.Kind).GroupKind(), gv.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up the API of %s: %w", d.Kind, err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = dyn.Resource(mapping.Resource).Namespace(d.Namespace)
	}
	_, err = ri.Get(ctx, d.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("reading %s %s: %w", d.Kind, d.Name, err)
}
