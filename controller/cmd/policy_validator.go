package cmd

import (
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/controller/policyvalidator"
)

// policyValidatorOptions are the policy-validator subcommand's flags.
type policyValidatorOptions struct {
	webhookOptions
}

func (o *policyValidatorOptions) addFlags(fs *flag.FlagSet) {
	o.webhookOptions.addFlags(fs, ":9990")
}

func newPolicyValidatorCommand(env Env) *cobra.Command {
	return componentCommand(env, "policy-validator", "Run the policy validator, the admission webhook that refuses invalid policy resources",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &policyValidatorOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newPolicyValidatorComponent(o, log) }
		})
}

func newPolicyValidatorComponent(o *policyValidatorOptions, log *slog.Logger) (*webhookComponent, error) {
	return newWebhookComponent("policy-validator", &o.webhookOptions, log, func(prometheus.Registerer) (webhookServer, error) {
		return policyvalidator.New(log), nil
	})
}
