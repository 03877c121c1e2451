package k8s

// The project's container images and where their binaries live inside them.
// The chart's defaults (proxy.image.name, controllerImage) name the same
// repositories; internal/images builds the images with this layout, and the
// chart's templates and the injector call the binaries by these paths.
const (
	// ImageRegistry is the registry and namespace of the project's images.
	ImageRegistry = "cr.l5d.io/linkerd-go"
	// ProxyImageName is the proxy image: the proxy (its entrypoint),
	// linkerd-init and linkerd-await, plus iptables-legacy for linkerd-init.
	ProxyImageName = ImageRegistry + "/proxy"
	// ControllerImageName is the control plane image: linkerd-controller
	// (its entrypoint) with the identity, destination and proxy-injector
	// commands.
	ControllerImageName = ImageRegistry + "/controller"

	// ProxyBinPath is the proxy's binary in the proxy image.
	ProxyBinPath = "/usr/lib/linkerd/linkerd2-proxy"
	// ProxyInitBinPath is linkerd-init's binary in the proxy image.
	ProxyInitBinPath = "/usr/lib/linkerd/linkerd2-proxy-init"
	// AwaitBinPath is linkerd-await's binary in the proxy image.
	AwaitBinPath = "/usr/lib/linkerd/linkerd-await"
	// ControllerBinPath is linkerd-controller's binary in the controller image.
	ControllerBinPath = "/usr/lib/linkerd/linkerd-controller"
)
