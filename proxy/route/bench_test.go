package route

import (
	"fmt"
	"testing"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// BenchmarkMatch10Routes matches a request to the last of ten routes.
func BenchmarkMatch10Routes(b *testing.B) {
	var routes []*destinationv1.Route
	for i := range 10 {
		routes = append(routes, &destinationv1.Route{Name: fmt.Sprint(i),
			Condition: &destinationv1.RequestMatch{Method: "GET", PathRegex: fmt.Sprintf(`/api/v%d/items/[^/]+`, i)}})
	}
	p, err := Compile(&destinationv1.Profile{Routes: routes}, "x:80")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if p.Match("GET", "/api/v9/items/42?x=1") == nil {
			b.Fatal("no route")
		}
	}
}

// BenchmarkBudget deposits and withdraws once per iteration.
func BenchmarkBudget(b *testing.B) {
	bud := NewBudget(DefaultBudget, nil)
	for b.Loop() {
		bud.Deposit()
		bud.Withdraw()
	}
}
