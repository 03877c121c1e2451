package metricsapi

import (
	"fmt"
	"strconv"
	"strings"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// Label names of the metrics as Prometheus stores them: the proxies' own
// labels (direction, dst_*, tls, ...) and the target labels the scrape
// configuration adds from pod metadata (namespace, pod, deployment, ...).
const (
	labelNamespace    = "namespace"
	labelDirection    = "direction"
	labelClass        = "classification"
	labelDstNamespace = "dst_namespace"
	labelAuthority    = "authority"
)

// matcher is one PromQL label matcher.
type matcher struct {
	name, op, value string
}

func (m matcher) String() string {
	return m.name + m.op + strconv.Quote(m.value)
}

// selector is a PromQL series selector's matchers.
type selector []matcher

func (s selector) String() string {
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func eq(name, value string) matcher { return matcher{name, "=", value} }
func nonEmpty(name string) matcher  { return matcher{name, "=~", ".+"} }

// kindLabel is the label naming a resource of kind on the side that
// reports it: the scrape target's own labels for a pod's workload (dst
// false), or the proxy's dst_* labels for the peer of outbound traffic (dst
// true). Services only exist as destinations (dst_service); authorities are
// the authority label on both sides.
func kindLabel(kind string, dst bool) string {
	switch kind {
	case client.KindNamespace:
		if dst {
			return labelDstNamespace
		}
		return labelNamespace
	case client.KindAuthority:
		return labelAuthority
	case client.KindJob:
		// Prometheus's scrape configuration names a pod's Job k8s_job
		// (job is the scrape job), as Linkerd's; destination's endpoint
		// label is job, so the proxy's is dst_job.
		if !dst {
			return "k8s_job"
		}
	}
	if dst {
		return "dst_" + kind
	}
	return kind
}

func nsLabel(dst bool) string {
	if dst {
		return labelDstNamespace
	}
	return labelNamespace
}

// resourceMatchers selects the series of r: the named one, or every one of
// its kind (in its namespace unless allNS).
func resourceMatchers(r *vizv1.Resource, allNS, dst bool) selector {
	var s selector
	if r.GetKind() == client.KindNamespace {
		if r.GetName() != "" {
			s = append(s, eq(nsLabel(dst), r.GetName()))
		} else {
			s = append(s, nonEmpty(nsLabel(dst)))
		}
		return s
	}
	if !allNS && r.GetNamespace() != "" {
		s = append(s, eq(nsLabel(dst), r.GetNamespace()))
	}
	l := kindLabel(r.GetKind(), dst)
	if r.GetName() != "" {
		s = append(s, eq(l, r.GetName()))
	} else {
		s = append(s, nonEmpty(l))
	}
	return s
}

// groupLabels are the labels rows of kind are grouped by.
func groupLabels(kind string, dst bool) []string {
	if kind == client.KindNamespace {
		return []string{nsLabel(dst)}
	}
	return []string{nsLabel(dst), kindLabel(kind, dst)}
}

// plan is how a stat query finds its series: which side reports them, the
// matchers, and the labels that name a row.
type plan struct {
	sel selector
	// group names the row's resource; dstGroup says whether it is in dst_* labels.
	group    []string
	dstGroup bool
	// outbound: the series are the client side's (outbound) metrics.
	outbound bool
}

// statPlan works out where StatSummary's numbers come from:
//   - no filter: the resource's own proxies' inbound metrics (for a
//     service, the clients' outbound metrics to it);
//   - to: the resource's outbound metrics to the target;
//   - from: the source's outbound metrics to the resource.
func statPlan(sel *vizv1.Resource, allNS bool, to, from *vizv1.Resource) plan {
	kind := sel.GetKind()
	switch {
	case to != nil:
		s := append(selector{eq(labelDirection, "outbound")}, resourceMatchers(sel, allNS, false)...)
		s = append(s, resourceMatchers(to, false, true)...)
		return plan{sel: s, group: groupLabels(kind, false), outbound: true}
	case from != nil:
		s := append(selector{eq(labelDirection, "outbound")}, resourceMatchers(from, false, false)...)
		s = append(s, resourceMatchers(sel, allNS, true)...)
		return plan{sel: s, group: groupLabels(kind, true), dstGroup: true, outbound: true}
	case kind == client.KindService:
		s := append(selector{eq(labelDirection, "outbound")}, resourceMatchers(sel, allNS, true)...)
		return plan{sel: s, group: groupLabels(kind, true), dstGroup: true, outbound: true}
	default:
		s := append(selector{eq(labelDirection, "inbound")}, resourceMatchers(sel, allNS, false)...)
		return plan{sel: s, group: groupLabels(kind, false)}
	}
}

func (p plan) by(extra ...string) string {
	return "(" + strings.Join(append(append([]string{}, p.group...), extra...), ", ") + ")"
}

// tcpSelector is the plan's selector for transport metrics: the accepting
// side (peer="src") for inbound, the connecting side (peer="dst") for
// outbound.
func (p plan) tcpSelector() selector {
	peer := "src"
	if p.outbound {
		peer = "dst"
	}
	return append(append(selector{}, p.sel...), eq("peer", peer))
}

func responsesQuery(p plan, window string) string {
	return fmt.Sprintf("sum(increase(response_total%s[%s])) by %s", p.sel, window, p.by(labelClass))
}

func quantileQuery(p plan, q float64, window string) string {
	return fmt.Sprintf("histogram_quantile(%s, sum(rate(response_latency_ms_bucket%s[%s])) by %s)",
		strconv.FormatFloat(q, 'f', -1, 64), p.sel, window, p.by("le"))
}

func tcpQueries(p plan, window string) (open, read, write string) {
	s := p.tcpSelector()
	return fmt.Sprintf("sum(tcp_open_connections%s) by %s", s, p.by()),
		fmt.Sprintf("sum(increase(tcp_read_bytes_total%s[%s])) by %s", s, window, p.by()),
		fmt.Sprintf("sum(increase(tcp_write_bytes_total%s[%s])) by %s", s, window, p.by())
}
