package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/cli/healthcheck"
	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/version"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// requestTimeout bounds each request the CLI makes to the API server.
const requestTimeout = 30 * time.Second

type checkOptions struct {
	pre       bool
	proxy     bool
	namespace string
	output    string
	wait      time.Duration
	// local targets the local mesh whose state is in stateDir rather than
	// a cluster.
	local    bool
	stateDir string
}

// checkDeps is what `linkerd check` needs from outside; tests replace it.
type checkDeps struct {
	newClient func() (kubernetes.Interface, error)
	// newDynamic reaches the policy resources; nil skips their checks.
	newDynamic     func() (dynamic.Interface, error)
	serverTime     func(ctx context.Context) (time.Time, error)
	kubectlVersion func(ctx context.Context) (string, error)
	now            func() time.Time
	retryInterval  time.Duration
	serverVersion  func(ctx context.Context) (string, error)
	// vizMetricsAPI reaches the viz metrics API in a namespace (for its
	// self-check); nil leaves that part of the check out.
	vizMetricsAPI func(ctx context.Context, ns string) (client.API, func(), error)
}

func newCmdCheck(global *GlobalOptions, env Env) *cobra.Command {
	opts := &checkOptions{output: healthcheck.TableOutput, wait: healthcheck.DefaultWait}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the Linkerd installation for potential problems",
		Long: `Check the Linkerd installation for potential problems.

The checks are grouped by category; each prints √ when it passes, ‼ for a
warning and × for an error, with the problem and a link to hints below it.
The command exits with status 1 when any check fails with an error.`,
		Example: `  # Can Linkerd be installed on this cluster?
  linkerd check --pre

  # Is the control plane healthy?
  linkerd check

  # And the meshed pods of the emojivoto namespace?
  linkerd -n emojivoto check --proxy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			deps := newCheckDeps(global)
			opts.local = useLocalMesh(cmd, global)
			return runCheck(cmd.Context(), opts, global, deps, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.pre, "pre", false, "only run the pre-installation checks, to determine if the control plane can be installed")
	flags.BoolVar(&opts.proxy, "proxy", false, "also run the data-plane checks, on the meshed pods of --namespace (all namespaces when not given)")
	flags.StringVarP(&opts.namespace, "namespace", "n", "", "namespace of the data-plane checks (with --proxy)")
	flags.StringVarP(&opts.output, "output", "o", opts.output, "output format: one of "+strings.Join(healthcheck.Outputs, ", "))
	flags.DurationVar(&opts.wait, "wait", opts.wait, "how long to wait for the checks that wait for the cluster (pods becoming ready)")
	addStateDirFlag(flags, &opts.stateDir)
	return cmd
}

// runCheck validates the options, runs the selected checks and renders
// them. It returns an *exitError when a check failed: the output already
// says why.
func runCheck(ctx context.Context, opts *checkOptions, global *GlobalOptions, deps checkDeps, stdout, stderr io.Writer) error {
	switch {
	case opts.pre && opts.proxy:
		return errors.New("--pre and --proxy cannot be used together")
	case opts.namespace != "" && !opts.proxy:
		return errors.New("--namespace selects the data-plane checks' namespace: use it with --proxy")
	case opts.wait <= 0:
		return fmt.Errorf("--wait must be positive, got %s", opts.wait)
	case global.LinkerdNamespace == "":
		return errors.New("--linkerd-namespace must not be empty")
	}
	if opts.local {
		return runLocalCheck(ctx, opts, global, deps, stdout, stderr)
	}
	categories := healthcheck.ControlPlaneCategories()
	switch {
	case opts.pre:
		categories = healthcheck.PreInstallCategories()
	case opts.proxy:
		categories = healthcheck.DataPlaneCategories()
	}
	if !opts.pre {
		// The viz extension's checks, when it is installed.
		viz := &vizcheck.Checker{Optional: true, MetricsAPI: deps.vizMetricsAPI}
		categories = append(categories, viz.Categories(opts.proxy)...)
	}
	return runCategories(ctx, categories, opts, global, deps, stdout, stderr)
}

// runLocalCheck runs the checks of the local mesh at opts.stateDir: with
// --pre, whether this machine can run one.
func runLocalCheck(ctx context.Context, opts *checkOptions, global *GlobalOptions, deps checkDeps, stdout, stderr io.Writer) error {
	m, err := localmesh.New(localmesh.Config{StateDir: opts.stateDir})
	if err != nil {
		return err
	}
	if opts.pre {
		return runCategories(ctx, healthcheck.LocalPreCategories(m), opts, global, deps, stdout, stderr)
	}
	deps.serverVersion = func(context.Context) (string, error) { return localmesh.ServerVersion(m.StateDir()) }
	categories := append(healthcheck.LocalCategories(m, opts.proxy), vizcheck.LocalCategory(func(context.Context) (client.API, func(), error) {
		addr, err := localmesh.MetricsAPIAddr(m.StateDir())
		if err != nil {
			return nil, nil, err
		}
		c, err := client.Dial(addr)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { _ = c.Close() }, nil
	}))
	return runCategories(ctx, categories, opts, global, deps, stdout, stderr)
}

// runCategories runs the checks of categories and renders them. It returns
// an *exitError when a check failed: the output already says why.
func runCategories(ctx context.Context, categories []healthcheck.Category, opts *checkOptions, global *GlobalOptions, deps checkDeps, stdout, stderr io.Writer) error {
	renderer, err := healthcheck.NewRenderer(opts.output, stdout)
	if err != nil {
		return err
	}
	state := &healthcheck.State{
		ControlPlaneNamespace: global.LinkerdNamespace,
		DataPlaneNamespace:    opts.namespace,
		CLIVersion:            version.Version,
		NewClient:             deps.newClient,
		NewDynamic:            deps.newDynamic,
		ServerTime:            deps.serverTime,
		KubectlVersion:        deps.kubectlVersion,
		Now:                   deps.now,
		ServerVersion:         deps.serverVersion,
	}

	// While a check waits for the cluster, say so on stderr (table output
	// only: JSON readers want stdout alone), once per distinct reason.
	waiting := map[string]string{}
	observe := func(r healthcheck.Result) {
		if !r.Retrying {
			renderer.Observe(r)
			return
		}
		if opts.output == healthcheck.JSONOutput {
			return
		}
		reason, _, _ := strings.Cut(r.Err.Error(), "\n")
		if waiting[r.Description] != reason {
			waiting[r.Description] = reason
			fmt.Fprintf(stderr, "waiting for %q: %s\n", r.Description, reason)
		}
	}

	success := healthcheck.Run(ctx, categories, state, healthcheck.Options{Wait: opts.wait, RetryInterval: deps.retryInterval}, observe)
	if err := renderer.Finish(success); err != nil {
		return err
	}
	if !success {
		return &exitError{code: 1}
	}
	return nil
}

// newCheckDeps returns the check command's dependencies; tests replace it.
var newCheckDeps = clusterCheckDeps

// clusterCheckDeps reaches the cluster named by the global flags.
func clusterCheckDeps(global *GlobalOptions) checkDeps {
	var cfg *rest.Config
	return checkDeps{
		newClient: func() (kubernetes.Interface, error) {
			c, err := restConfig(global)
			if err != nil {
				return nil, err
			}
			cfg = c
			kube, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return nil, fmt.Errorf("kubernetes client: %w", err)
			}
			return kube, nil
		},
		newDynamic: func() (dynamic.Interface, error) {
			if cfg == nil {
				return nil, errors.New("no client configuration")
			}
			d, err := dynamic.NewForConfig(cfg)
			if err != nil {
				return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
			}
			return d, nil
		},
		serverTime: func(ctx context.Context) (time.Time, error) {
			if cfg == nil {
				return time.Time{}, errors.New("no client configuration")
			}
			return healthcheck.APIServerTime(ctx, cfg)
		},
		kubectlVersion: healthcheck.LocalKubectlVersion,
		vizMetricsAPI:  vizCheckMetricsAPI(global),
	}
}

// restConfig loads the client configuration the global flags name.
func restConfig(global *GlobalOptions) (*rest.Config, error) {
	cfg, err := k8s.LoadRESTConfig(global.Kubeconfig, global.KubeContext)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = requestTimeout
	cfg.UserAgent = "linkerd/cli " + version.Version
	return cfg, nil
}

// ClusterServerVersion is the ServerVersionFunc of the real CLI: the
// version of the control plane in the cluster the global flags name.
func ClusterServerVersion(ctx context.Context, global *GlobalOptions) (string, error) {
	cfg, err := restConfig(global)
	if err != nil {
		return "", err
	}
	cfg.Timeout = 10 * time.Second
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("kubernetes client: %w", err)
	}
	return healthcheck.ServerVersion(ctx, kube, global.LinkerdNamespace)
}
