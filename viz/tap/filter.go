package tap

import (
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// MatchTo reports whether ev is a request sent to the resource to (the
// --to filter): an outbound request whose destination, as discovery
// labelled it, is in to's namespace and, unless to is a namespace, is to's
// workload, pod or service. A nil to matches every event.
func MatchTo(ev *tapv1.TapEvent, to *vizv1.Resource) bool {
	if to == nil {
		return true
	}
	if ev.GetDirection() != "outbound" {
		return false
	}
	meta := ev.GetDestinationMeta()
	if to.GetKind() == client.KindNamespace {
		return meta["namespace"] == to.GetName()
	}
	if meta["namespace"] != to.GetNamespace() {
		return false
	}
	switch to.GetKind() {
	case client.KindDeployment, client.KindStatefulSet, client.KindDaemonSet, client.KindJob, client.KindPod, client.KindService:
		return meta[to.GetKind()] == to.GetName()
	}
	return false
}
