package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/profiles"
)

type profileOptions struct {
	namespace     string
	template      bool
	openAPI       string
	proto         string
	ignoreCluster bool
	output        string
}

// newCmdProfile is `linkerd profile`: a ServiceProfile generated from a
// template, an OpenAPI spec or a protobuf file.
func newCmdProfile(global *GlobalOptions, env Env) *cobra.Command {
	o := &profileOptions{}
	cmd := &cobra.Command{
		Use:   "profile [flags] (--template | --open-api file | --proto file) (SERVICE)",
		Short: "Output service profile config for Kubernetes",
		Long: `Output a ServiceProfile for SERVICE, to apply with kubectl apply -f - (or
linkerd local apply -f - on the local mesh): a commented template to edit
(--template), a route per path and method of an OpenAPI or Swagger 2.0 spec
in JSON or YAML (--open-api), or a route per method of the gRPC services of a
protobuf file (--proto). "-" reads the spec from standard input.

The profile is named after the service's fully-qualified name, in the
cluster domain of the installed control plane (with a kubeconfig), or
cluster.local (without one, or with --ignore-cluster).

An OpenAPI operation's x-linkerd-retryable (true/false) and x-linkerd-timeout
(a duration) set its route's isRetryable and timeout.`,
		Example: `  # A template to edit and apply.
  linkerd profile -n demo --template web

  # A route per operation of an OpenAPI spec.
  linkerd profile -n demo --open-api web.swagger web | kubectl apply -f -

  # A route per gRPC method.
  linkerd profile -n demo --proto voting.proto voting`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProfile(cmd.Context(), global, o, args[0], cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace of the service")
	f.BoolVar(&o.template, "template", false, "output a service profile template")
	f.StringVar(&o.openAPI, "open-api", "", "output a service profile based on the given OpenAPI spec file")
	f.StringVar(&o.proto, "proto", "", "output a service profile based on the given Protobuf spec file")
	f.BoolVar(&o.ignoreCluster, "ignore-cluster", false, "output a service profile through offline generation (cluster domain cluster.local)")
	f.StringVarP(&o.output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

func runProfile(ctx context.Context, global *GlobalOptions, o *profileOptions, name string, stdin io.Reader, stdout io.Writer) error {
	chosen := 0
	for _, set := range []bool{o.template, o.openAPI != "", o.proto != ""} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("give exactly one of --template, --open-api FILE or --proto FILE")
	}
	if err := checkOutput(o.output, "yaml", "json"); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("invalid service name %q: not a DNS label (lowercase letters, digits and '-')", name)
	}
	if errs := validation.IsDNS1123Label(o.namespace); len(errs) > 0 {
		return fmt.Errorf("invalid namespace %q: not a DNS label (lowercase letters, digits and '-')", o.namespace)
	}
	svc := profiles.Service{Name: name, Namespace: o.namespace}
	domain, err := profileClusterDomain(ctx, global, o.ignoreCluster)
	if err != nil {
		return err
	}
	svc.ClusterDomain = domain
	if o.template {
		if o.output == "json" {
			return errors.New("--template is YAML with comments: it has no JSON output")
		}
		_, err := io.WriteString(stdout, profiles.Template(svc))
		return err
	}
	if o.openAPI != "" {
		spec, err := readSpec(o.openAPI, stdin)
		if err != nil {
			return err
		}
		p, err := profiles.FromOpenAPI(svc, spec)
		if err != nil {
			return fmt.Errorf("%s: %w", o.openAPI, err)
		}
		return profiles.Render(stdout, p, o.output)
	}
	src, err := readSpec(o.proto, stdin)
	if err != nil {
		return err
	}
	file := o.proto
	if file == "-" {
		file = "<stdin>"
	}
	p, err := profiles.FromProto(svc, file, src)
	if err != nil {
		return err // already names the file: "voting.proto:3:9: ..."
	}
	return profiles.Render(stdout, p, o.output)
}

// readSpec reads a spec file, or standard input for "-".
func readSpec(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	return b, nil
}

// profileClusterDomain is the cluster domain profiles are named in: the
// installed control plane's when there is a kubeconfig and ignore is
// false, else cluster.local.
func profileClusterDomain(ctx context.Context, global *GlobalOptions, ignore bool) (string, error) {
	if ignore || !hasKubeconfig(global) {
		return profiles.DefaultClusterDomain, nil
	}
	kube, err := newKubeClient(global)
	if err != nil {
		return "", fmt.Errorf("%w (use --ignore-cluster to generate without a cluster)", err)
	}
	installed, err := installedValues(ctx, kube, global.LinkerdNamespace)
	if err != nil {
		return "", fmt.Errorf("%w (use --ignore-cluster to generate without a cluster)", err)
	}
	if d := chartvalues.String(installed, "clusterDomain"); d != "" {
		return d, nil
	}
	return profiles.DefaultClusterDomain, nil
}
