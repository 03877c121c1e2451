package profiles

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

// Request is a request a service was seen handling: its method and path
// (a query string is ignored).
type Request struct {
	Method string
	Path   string
}

// Observed collects requests, counting them per method and path.
type Observed struct {
	counts map[Request]int
}

// Add counts one request; one without a method or a path that is not
// absolute (CONNECT's authority form, "*") is ignored.
func (o *Observed) Add(r Request) {
	if i := strings.IndexAny(r.Path, "?#"); i >= 0 {
		r.Path = r.Path[:i]
	}
	if r.Method == "" || !strings.HasPrefix(r.Path, "/") {
		return
	}
	if o.counts == nil {
		o.counts = map[Request]int{}
	}
	o.counts[r]++
}

// Len is the number of distinct routes seen.
func (o *Observed) Len() int { return len(o.counts) }

// Profile returns the profile of svc with a route per method and path
// seen, named "METHOD /path" and matching exactly those: at most limit
// routes (0: no limit), the most requested ones, listed by path and
// method.
func (o *Observed) Profile(svc Service, limit int) (*sp.ServiceProfile, error) {
	if len(o.counts) == 0 {
		return nil, errors.New("no requests seen: no route to generate")
	}
	reqs := make([]Request, 0, len(o.counts))
	for r := range o.counts {
		reqs = append(reqs, r)
	}
	byName := func(a, b Request) bool {
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	}
	if limit > 0 && len(reqs) > limit {
		sort.Slice(reqs, func(i, j int) bool {
			if ci, cj := o.counts[reqs[i]], o.counts[reqs[j]]; ci != cj {
				return ci > cj
			}
			return byName(reqs[i], reqs[j])
		})
		reqs = reqs[:limit]
	}
	sort.Slice(reqs, func(i, j int) bool { return byName(reqs[i], reqs[j]) })
	routes := make([]*sp.RouteSpec, len(reqs))
	for i, r := range reqs {
		routes[i] = route(r.Method+" "+r.Path, r.Method, regexp.QuoteMeta(r.Path))
	}
	p := newProfile(svc, routes)
	if err := sp.Validate(p); err != nil {
		return nil, fmt.Errorf("the generated profile is not valid: %w", err)
	}
	return p, nil
}
