package localmesh

import (
	"context"
	"fmt"
	"strconv"
)

// DemoNamespace is where the demo app runs.
const DemoNamespace = "demo"

// DemoPort is the port every demo service listens on.
const DemoPort = 8080

// demoFQDN is the in-mesh name of a demo service.
func demoFQDN(svc string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc, DemoNamespace, DemoPort)
}

// RunDemo starts the demo app, meshed, in namespace demo: the items and
// voting gRPC services, the web front end calling them, and the bot voting
// through web. linkerd-demo is looked up with the other binaries.
func (m *Mesh) RunDemo(ctx context.Context, votesPerSecond float64) ([]*Workload, error) {
	demo := m.bin("linkerd-demo")
	port := strconv.Itoa(DemoPort)
	specs := []RunSpec{
		{Name: "items", Port: DemoPort, Command: []string{demo, "items", "--port", port}},
		{Name: "voting", Port: DemoPort, Command: []string{demo, "voting", "--port", port}},
		{Name: "web", Port: DemoPort, Command: []string{demo, "web", "--port", port,
			"--items-addr", demoFQDN("items"), "--voting-addr", demoFQDN("voting")}},
		{Name: "bot", Command: []string{demo, "bot", "--web-addr", demoFQDN("web"),
			"--rate", strconv.FormatFloat(votesPerSecond, 'f', -1, 64)}},
	}
	var started []*Workload
	for _, spec := range specs {
		spec.Namespace = DemoNamespace
		w, err := m.Run(ctx, spec)
		if err != nil {
			return started, fmt.Errorf("demo %s: %w", spec.Name, err)
		}
		started = append(started, w)
	}
	return started, nil
}
