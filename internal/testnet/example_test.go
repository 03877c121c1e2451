package testnet_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// A typical integration test: the app and a client in separate pods, the
// client's requests made from inside its pod.
func Example() {
	var t testing.TB // the test's *testing.T

	bins := testnet.BuildBinaries(t, "./test/testapp")
	n := testnet.New(t)
	server := n.AddPod("server")
	client := n.AddPod("client")

	server.Start(t, testnet.ProcSpec{
		Path: bins["testapp"],
		Args: []string{"--name", "server"},
	})
	// Rules such as linkerd-init's would be installed with
	// server.Exec(t, "iptables", ...), and the proxy started with
	// User: &testnet.Credential{UID: 2102, GID: 2102}.

	ctx := context.Background()
	if err := client.WaitTCP(ctx, server.Addr(8080)); err != nil {
		t.Fatal(err)
	}
	httpClient := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}}
	resp, err := httpClient.Get("http://" + server.Addr(8080) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	t.Log(string(body)) // "testapp server"
}
