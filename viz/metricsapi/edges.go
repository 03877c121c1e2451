package metricsapi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// Edges implements the API. An edge is a pair of resources the source's
// proxy sent requests to (or has connections open to) in the window, by its
// outbound metrics; the server identity is what the client's proxy
// verified, the client identity what the destination's proxy saw (from its
// inbound metrics, matched by the source's namespace and name).
func (s *Server) Edges(ctx context.Context, req *vizv1.EdgesRequest) (*vizv1.EdgesResponse, error) {
	req = proto.Clone(req).(*vizv1.EdgesRequest)
	win, _, err := window(req.GetTimeWindow())
	if err != nil {
		return nil, err
	}
	allNS := req.GetAllNamespaces()
	if err := checkResource("edges", req.GetSelector(), allNS); err != nil {
		return nil, err
	}
	kind := req.GetSelector().GetKind()
	switch kind {
	case client.KindNamespace, client.KindService, client.KindAuthority:
		return nil, status.Errorf(codes.InvalidArgument, "edges of %s are not supported (deployment, statefulset, daemonset, job or pod)", kind)
	}
	ns := req.GetSelector().GetNamespace()
	if !allNS {
		pods, err := s.pods.Pods(ctx, ns)
		if err != nil {
			return nil, s.statusOf(err)
		}
		if len(pods) == 0 {
			return nil, status.Errorf(codes.NotFound, "namespace %s not found (it has no pods)", ns)
		}
	}

	src, dst := kindLabel(kind, false), kindLabel(kind, true)
	outBy := []string{labelNamespace, src, labelDstNamespace, dst, "server_id", "no_tls_reason"}
	outSel := selector{eq(labelDirection, "outbound"), nonEmpty(src), nonEmpty(dst)}
	inBy := []string{labelNamespace, src, "client_id"}
	inSel := selector{eq(labelDirection, "inbound"), nonEmpty(src)}
	queries := []string{
		fmt.Sprintf("sum(increase(response_total%s[%s])) by (%s) > 0", outSel, win, strings.Join(outBy, ", ")),
		fmt.Sprintf("sum(tcp_open_connections%s) by (%s) > 0", append(outSel, eq("peer", "dst")), strings.Join(outBy, ", ")),
		fmt.Sprintf("sum(increase(response_total%s[%s])) by (%s) > 0", inSel, win, strings.Join(inBy, ", ")),
		fmt.Sprintf("sum(tcp_open_connections%s) by (%s) > 0", append(inSel, eq("peer", "src")), strings.Join(inBy, ", ")),
	}
	var vecs []model.Vector
	for _, q := range queries {
		v, err := query(ctx, s.prom, q)
		if err != nil {
			return nil, s.statusOf(err)
		}
		vecs = append(vecs, v)
	}

	// Client identities seen by each destination.
	clients := map[resourceKey][]string{}
	for _, v := range vecs[2:] {
		for _, smp := range v {
			id := string(smp.Metric["client_id"])
			if id == "" {
				continue
			}
			k := resourceKey{string(smp.Metric[labelNamespace]), string(smp.Metric[model.LabelName(src)])}
			if !slices.Contains(clients[k], id) {
				clients[k] = append(clients[k], id)
			}
		}
	}

	type edgeKey struct{ src, dst resourceKey }
	edges := map[edgeKey]*vizv1.Edge{}
	for _, v := range vecs[:2] {
		for _, smp := range v {
			m := smp.Metric
			sk := resourceKey{string(m[labelNamespace]), string(m[model.LabelName(src)])}
			dk := resourceKey{string(m[labelDstNamespace]), string(m[model.LabelName(dst)])}
			if !allNS && sk.namespace != ns && dk.namespace != ns {
				continue
			}
			ek := edgeKey{sk, dk}
			e := edges[ek]
			if e == nil {
				e = &vizv1.Edge{
					Src: &vizv1.Resource{Kind: kind, Namespace: sk.namespace, Name: sk.name},
					Dst: &vizv1.Resource{Kind: kind, Namespace: dk.namespace, Name: dk.name},
				}
				edges[ek] = e
			}
			// Plaintext anywhere on the edge wins: the edge is only
			// secured when every series of it was mTLS.
			if id := string(m["server_id"]); id != "" && e.NoTlsReason == "" {
				e.ServerId = id
			} else if id == "" {
				e.ServerId = ""
				e.NoTlsReason = string(m["no_tls_reason"])
				if e.NoTlsReason == "" {
					e.NoTlsReason = "not_provided_by_remote"
				}
			}
		}
	}
	out := &vizv1.EdgesResponse{}
	for _, e := range edges {
		if e.ServerId != "" {
			e.ClientId = matchClient(clients[resourceKey{e.Dst.Namespace, e.Dst.Name}], e.Src)
		}
		out.Edges = append(out.Edges, e)
	}
	slices.SortFunc(out.Edges, func(a, b *vizv1.Edge) int {
		return strings.Compare(edgeSortKey(a), edgeSortKey(b))
	})
	return out, nil
}

func edgeSortKey(e *vizv1.Edge) string {
	return e.Src.Namespace + "\x00" + e.Src.Name + "\x00" + e.Dst.Namespace + "\x00" + e.Dst.Name
}

// matchClient picks, among the client identities a destination saw
// (<sa>.<ns>.serviceaccount.identity...), the source's: its service account
// named like the source in the source's namespace, else the only one from
// that namespace; "" when it cannot tell.
func matchClient(ids []string, src *vizv1.Resource) string {
	var inNS []string
	for _, id := range ids {
		parts := strings.SplitN(id, ".", 3)
		if len(parts) < 3 || parts[1] != src.GetNamespace() {
			continue
		}
		if parts[0] == src.GetName() {
			return id
		}
		inNS = append(inNS, id)
	}
	if len(inNS) == 1 {
		return inNS[0]
	}
	return ""
}
