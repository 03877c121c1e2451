package v1alpha2

import "k8s.io/apimachinery/pkg/runtime"

// DeepCopyInto copies sp into out.
func (sp *ServiceProfile) DeepCopyInto(out *ServiceProfile) {
	*out = *sp
	out.TypeMeta = sp.TypeMeta
	sp.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	sp.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a copy of sp.
func (sp *ServiceProfile) DeepCopy() *ServiceProfile {
	if sp == nil {
		return nil
	}
	out := new(ServiceProfile)
	sp.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (sp *ServiceProfile) DeepCopyObject() runtime.Object {
	if c := sp.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies l into out.
func (l *ServiceProfileList) DeepCopyInto(out *ServiceProfileList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]ServiceProfile, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *ServiceProfileList) DeepCopy() *ServiceProfileList {
	if l == nil {
		return nil
	}
	out := new(ServiceProfileList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *ServiceProfileList) DeepCopyObject() runtime.Object {
	if c := l.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies s into out.
func (s *Spec) DeepCopyInto(out *Spec) {
	*out = *s
	out.Routes = copyPtrs(s.Routes, (*RouteSpec).DeepCopy)
	if s.RetryBudget != nil {
		rb := *s.RetryBudget
		out.RetryBudget = &rb
	}
	out.DstOverrides = copyPtrs(s.DstOverrides, (*WeightedDst).DeepCopy)
	if s.OpaquePorts != nil {
		out.OpaquePorts = append([]string{}, s.OpaquePorts...)
	}
}

// DeepCopy returns a copy of r.
func (r *RouteSpec) DeepCopy() *RouteSpec {
	if r == nil {
		return nil
	}
	out := *r
	out.Condition = r.Condition.DeepCopy()
	out.ResponseClasses = copyPtrs(r.ResponseClasses, (*ResponseClass).DeepCopy)
	return &out
}

// DeepCopy returns a copy of m.
func (m *RequestMatch) DeepCopy() *RequestMatch {
	if m == nil {
		return nil
	}
	out := *m
	out.All = copyPtrs(m.All, (*RequestMatch).DeepCopy)
	out.Any = copyPtrs(m.Any, (*RequestMatch).DeepCopy)
	out.Not = m.Not.DeepCopy()
	return &out
}

// DeepCopy returns a copy of c.
func (c *ResponseClass) DeepCopy() *ResponseClass {
	if c == nil {
		return nil
	}
	out := *c
	out.Condition = c.Condition.DeepCopy()
	return &out
}

// DeepCopy returns a copy of m.
func (m *ResponseMatch) DeepCopy() *ResponseMatch {
	if m == nil {
		return nil
	}
	out := *m
	out.All = copyPtrs(m.All, (*ResponseMatch).DeepCopy)
	out.Any = copyPtrs(m.Any, (*ResponseMatch).DeepCopy)
	out.Not = m.Not.DeepCopy()
	if m.Status != nil {
		r := *m.Status
		out.Status = &r
	}
	return &out
}

// DeepCopy returns a copy of d.
func (d *WeightedDst) DeepCopy() *WeightedDst {
	if d == nil {
		return nil
	}
	return &WeightedDst{Authority: d.Authority, Weight: d.Weight.DeepCopy()}
}

// copyPtrs deep-copies a slice of pointers, keeping nil and empty apart.
func copyPtrs[T any](in []*T, deepCopy func(*T) *T) []*T {
	if in == nil {
		return nil
	}
	out := make([]*T, len(in))
	for i, v := range in {
		out[i] = deepCopy(v)
	}
	return out
}
