package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/version"
)

// injectOptions are inject's flags.
type injectOptions struct {
	manual            bool
	ignoreCluster     bool
	ingress           bool
	trustAnchorsFile  string
	proxyImage        string
	proxyVersion      string
	imagePullPolicy   string
	logLevel          string
	logFormat         string
	skipInboundPorts  []string
	skipOutboundPorts []string
	opaquePorts       []string
	cpuRequest        string
	cpuLimit          string
	memoryRequest     string
	memoryLimit       string
	proxyUID          int64
	nativeSidecar     bool
	waitBeforeExit    uint
	closeWaitTimeout  string
}

func newCmdInject(global *GlobalOptions, env Env) *cobra.Command {
	opts := &injectOptions{}
	cmd := &cobra.Command{
		Use:   "inject [flags] CONFIG-FILE|DIR|- ...",
		Short: "Add the Linkerd proxy to Kubernetes configs",
		Long: `inject reads Kubernetes resources from files, directories (their *.yaml, *.yml
and *.json files, recursively) or standard input ("-"), and writes them to
standard output with the pod templates of their workloads (Deployment,
StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, ReplicationController, Pod,
and the items of a List) annotated "linkerd.io/inject: enabled", so that the
proxy injector adds the proxy when the pods are created. Other resources pass
through unchanged. A summary of what was done goes to standard error.

With --manual the proxy and linkerd-init are written into the pod templates
instead, configured by the cluster's linkerd-config (or, with --ignore-cluster
or without a cluster, by the chart defaults and these flags).

The proxy flags become config.linkerd.io/* annotations on the pod templates.`,
		Example: `  # Mesh a deployment on the fly
  kubectl get deploy web -o yaml | linkerd inject - | kubectl apply -f -

  # Inline the proxy without looking at a cluster
  linkerd inject --manual --ignore-cluster --identity-trust-anchors-file ca.crt app.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			annotations, err := opts.annotations(cmd)
			if err != nil {
				return err
			}
			t := &injectTransformer{annotations: annotations}
			if opts.manual {
				t.injector, err = opts.newInjector(cmd.Context(), global, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
			}
			return transformManifests(args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), t)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.manual, "manual", false, "write the proxy into the pod templates instead of annotating them for the proxy injector")
	f.BoolVar(&opts.ignoreCluster, "ignore-cluster", false, "with --manual, do not read the installation's configuration from the cluster")
	f.BoolVar(&opts.ingress, "ingress", false, `run the proxy in ingress mode ("linkerd.io/inject: ingress")`)
	f.StringVar(&opts.trustAnchorsFile, "identity-trust-anchors-file", "", "with --manual, PEM file of the identity trust anchors (default: the cluster's)")
	f.StringVar(&opts.proxyImage, "proxy-image", "", "proxy container image name")
	f.StringVar(&opts.proxyVersion, "proxy-version", "", "proxy container image tag")
	f.StringVar(&opts.imagePullPolicy, "image-pull-policy", "", "proxy image pull policy: Always, IfNotPresent or Never")
	f.StringVar(&opts.logLevel, "proxy-log-level", "", `proxy log filter, e.g. "warn,linkerd=info"`)
	f.StringVar(&opts.logFormat, "proxy-log-format", "", "proxy log format: plain or json")
	f.StringSliceVar(&opts.skipInboundPorts, "skip-inbound-ports", nil, "ports and ranges whose inbound traffic bypasses the proxy")
	f.StringSliceVar(&opts.skipOutboundPorts, "skip-outbound-ports", nil, "ports and ranges whose outbound traffic bypasses the proxy")
	f.StringSliceVar(&opts.opaquePorts, "opaque-ports", nil, "ports and ranges whose traffic is opaque TCP (no protocol detection)")
	f.StringVar(&opts.cpuRequest, "proxy-cpu-request", "", "proxy CPU request, e.g. 100m")
	f.StringVar(&opts.cpuLimit, "proxy-cpu-limit", "", "proxy CPU limit, e.g. 1")
	f.StringVar(&opts.memoryRequest, "proxy-memory-request", "", "proxy memory request, e.g. 20Mi")
	f.StringVar(&opts.memoryLimit, "proxy-memory-limit", "", "proxy memory limit, e.g. 250Mi")
	f.Int64Var(&opts.proxyUID, "proxy-uid", 0, "user id the proxy runs as")
	f.BoolVar(&opts.nativeSidecar, "native-sidecar", false, "run the proxy as a native sidecar (an init container with restartPolicy: Always)")
	f.UintVar(&opts.waitBeforeExit, "wait-before-exit-seconds", 0, "seconds the proxy waits before shutting down with its pod")
	f.StringVar(&opts.closeWaitTimeout, "close-wait-timeout", "", "conntrack close-wait timeout set by linkerd-init, e.g. 1h (linkerd-init then runs as root)")
	return cmd
}

// annotations turns the changed proxy flags into configuration annotations,
// checking their values.
func (o *injectOptions) annotations(cmd *cobra.Command) (map[string]string, error) {
	out := map[string]string{}
	set := func(flag, annotation, value string) error {
		if !cmd.Flags().Changed(flag) {
			return nil
		}
		if err := inject.ValidateAnnotation(annotation, value); err != nil {
			return fmt.Errorf("--%s=%s: %w", flag, value, err)
		}
		out[annotation] = value
		return nil
	}
	list := func(s []string) string { return strings.Join(s, ",") }
	for _, f := range []struct{ flag, annotation, value string }{
		{"proxy-image", inject.ProxyImageAnnotation, o.proxyImage},
		{"proxy-version", inject.ProxyVersionOverrideAnnotation, o.proxyVersion},
		{"image-pull-policy", inject.ProxyImagePullPolicyAnnotation, o.imagePullPolicy},
		{"proxy-log-level", inject.ProxyLogLevelAnnotation, o.logLevel},
		{"proxy-log-format", inject.ProxyLogFormatAnnotation, o.logFormat},
		{"skip-inbound-ports", k8s.ProxyIgnoreInboundPortsAnnotation, list(o.skipInboundPorts)},
		{"skip-outbound-ports", k8s.ProxyIgnoreOutboundPortsAnnotation, list(o.skipOutboundPorts)},
		{"opaque-ports", k8s.ProxyOpaquePortsAnnotation, list(o.opaquePorts)},
		{"proxy-cpu-request", inject.ProxyCPURequestAnnotation, o.cpuRequest},
		{"proxy-cpu-limit", inject.ProxyCPULimitAnnotation, o.cpuLimit},
		{"proxy-memory-request", inject.ProxyMemoryRequestAnnotation, o.memoryRequest},
		{"proxy-memory-limit", inject.ProxyMemoryLimitAnnotation, o.memoryLimit},
		{"proxy-uid", inject.ProxyUIDAnnotation, strconv.FormatInt(o.proxyUID, 10)},
		{"native-sidecar", inject.ProxyEnableNativeSidecarAnnotation, strconv.FormatBool(o.nativeSidecar)},
		{"wait-before-exit-seconds", inject.ProxyWaitBeforeExitSecondsAnnotation, strconv.FormatUint(uint64(o.waitBeforeExit), 10)},
		{"close-wait-timeout", inject.CloseWaitTimeoutAnnotation, o.closeWaitTimeout},
	} {
		if err := set(f.flag, f.annotation, f.value); err != nil {
			return nil, err
		}
	}
	if o.ingress {
		out[k8s.ProxyInjectAnnotation] = k8s.ProxyInjectIngress
	}
	return out, nil
}

// newInjector builds the injector --manual uses: the cluster's values when
// it can read them (unless --ignore-cluster), else the chart defaults.
func (o *injectOptions) newInjector(ctx context.Context, global *GlobalOptions, stderr io.Writer) (*inject.Injector, error) {
	var values inject.Values
	if !o.ignoreCluster {
		stored, err := clusterValues(ctx, global)
		if err != nil {
			fmt.Fprintf(stderr, "could not read the Linkerd configuration from the cluster (%s); using the defaults (--ignore-cluster skips this)\n", oneLine(err.Error()))
		} else if values, err = inject.WithDefaults(stored); err != nil {
			return nil, err
		}
	}
	if values == nil {
		defaults, err := inject.DefaultValues()
		if err != nil {
			return nil, err
		}
		defaults["controllerNamespace"] = global.LinkerdNamespace
		values = defaults
	}
	if o.trustAnchorsFile != "" {
		pem, err := os.ReadFile(o.trustAnchorsFile)
		if err != nil {
			return nil, fmt.Errorf("--identity-trust-anchors-file: %w", err)
		}
		if !strings.Contains(string(pem), "-----BEGIN CERTIFICATE-----") {
			return nil, fmt.Errorf("--identity-trust-anchors-file: %s holds no PEM certificate", o.trustAnchorsFile)
		}
		values["identityTrustAnchorsPEM"] = string(pem)
	}
	inj, err := inject.New(values, "linkerd/cli "+version.Version)
	if errors.Is(err, inject.ErrNoTrustAnchors) {
		return nil, errors.New("--manual needs the identity trust anchors: pass --identity-trust-anchors-file, or reach a cluster where Linkerd is installed")
	}
	return inj, err
}

// clusterValues reads the installation's values from linkerd-config.
func clusterValues(ctx context.Context, global *GlobalOptions) (inject.Values, error) {
	kube, err := newKubeClient(global)
	if err != nil {
		return nil, err
	}
	return installedValues(ctx, kube, global.LinkerdNamespace)
}

func newCmdUninject(_ Env) *cobra.Command {
	return &cobra.Command{
		Use:   "uninject [flags] CONFIG-FILE|DIR|- ...",
		Short: "Remove the Linkerd proxy from Kubernetes configs",
		Long: `uninject reads Kubernetes resources as inject does and writes them back without
what inject (or the proxy injector) added to their pod templates: the proxy
and linkerd-init containers, their volumes, and Linkerd's annotations
(including linkerd.io/inject) and labels.`,
		Example: `  kubectl get deploy web -o yaml | linkerd uninject - | kubectl apply -f -`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return transformManifests(args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), uninjectTransformer{})
		},
	}
}
