package cmd

import (
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/controller/spvalidator"
)

// spValidatorOptions are the sp-validator subcommand's flags.
type spValidatorOptions struct {
	webhookOptions
}

func (o *spValidatorOptions) addFlags(fs *flag.FlagSet) {
	o.webhookOptions.addFlags(fs, ":9997")
}

func newSPValidatorCommand(env Env) *cobra.Command {
	return componentCommand(env, "sp-validator", "Run the ServiceProfile validator, the admission webhook that refuses invalid ServiceProfiles",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &spValidatorOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newSPValidatorComponent(o, log) }
		})
}

func newSPValidatorComponent(o *spValidatorOptions, log *slog.Logger) (*webhookComponent, error) {
	return newWebhookComponent("sp-validator", &o.webhookOptions, log, func(prometheus.Registerer) (webhookServer, error) {
		return spvalidator.New(log), nil
	})
}
