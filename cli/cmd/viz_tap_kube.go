package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/linkerd-go/linkerd/cli/portforward"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/tap"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// tapPodPort is the tap service's API port in its pod (on its loopback:
// only a port-forward through the Kubernetes API reaches it).
const tapPodPort = 8088

// kubeTap taps through the viz extension's tap service in the cluster the
// global flags name, reached by a port-forward to its pod, and prints the
// events until ctx ends.
func kubeTap(ctx context.Context, w io.Writer, global *GlobalOptions, opts *vizOptions, req *vizv1.TapByResourceRequest, output string) error {
	events, errs, stop, err := kubeTapEvents(ctx, global, opts, req)
	if err != nil {
		return err
	}
	defer stop()
	return printTap(w, events, errs, output)
}

// kubeTapEvents starts a tap through the cluster's tap service: its events
// until ctx ends, then its error; stop ends the port-forward once they are
// read.
func kubeTapEvents(ctx context.Context, global *GlobalOptions, opts *vizOptions, req *vizv1.TapByResourceRequest) (<-chan tap.Event, <-chan error, func(), error) {
	cfg, kube, err := kubeClients(global)
	if err != nil {
		return nil, nil, nil, err
	}
	findCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns, err := vizcheck.FindNamespace(findCtx, kube, opts.namespace)
	if apierrors.IsNotFound(err) {
		return nil, nil, nil, fmt.Errorf("%w: install it with linkerd viz install | kubectl apply -f -", err)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	sel := labels.Set{vizcheck.ExtensionLabel: vizcheck.ExtensionName, vizcheck.ComponentLabel: vizcheck.TapName}.String()
	f, err := portforward.ToComponent(findCtx, cfg, ns, sel, 0, tapPodPort)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reaching the tap service: %w", err)
	}
	events, errs := tapService(ctx, f.Addr, req)
	return events, errs, f.Close, nil
}

// tapService streams the events of req from the tap service at addr; the
// tap's error, if any, comes on errs once events is closed.
func tapService(ctx context.Context, addr string, req *vizv1.TapByResourceRequest) (<-chan tap.Event, <-chan error) {
	events := make(chan tap.Event, 64)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		defer close(events)
		if err := streamTap(ctx, addr, req, events); err != nil && ctx.Err() == nil {
			errs <- err
		}
	}()
	return events, errs
}

func streamTap(ctx context.Context, addr string, req *vizv1.TapByResourceRequest, out chan<- tap.Event) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("tap service %s: %w", addr, err)
	}
	defer conn.Close()
	stream, err := vizv1.NewTapServiceClient(conn).TapByResource(ctx, req)
	if err != nil {
		return tapServiceError(err, addr)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return tapServiceError(err, addr)
		}
		select {
		case out <- tap.Event{Namespace: ev.GetNamespace(), Pod: ev.GetPod(), TapEvent: ev.GetEvent()}:
		case <-ctx.Done():
			return nil
		}
	}
}

// tapServiceError turns a tap service error into one line for the user.
func tapServiceError(err error, addr string) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Unavailable && strings.Contains(st.Message(), "dial tcp") {
		return fmt.Errorf("cannot reach the tap service at %s: %s", addr, st.Message())
	}
	return errors.New(st.Message())
}
