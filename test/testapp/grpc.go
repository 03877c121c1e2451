package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/interop"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// testServiceName is the full name of the interop TestService.
const testServiceName = "grpc.testing.TestService"

// grpcServer serves the gRPC interop TestService and grpc.health.v1.
type grpcServer struct {
	srv    *grpc.Server
	health *health.Server
}

// newGRPCServer returns the gRPC server. The TestService's UnaryCall and
// FullDuplexCall answer with the status a request's response_status asks
// for, so tests can provoke non-OK statuses.
func newGRPCServer() *grpcServer {
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, interop.NewTestServer())
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(testServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	return &grpcServer{srv: srv, health: hs}
}

// Serve serves on ln until Shutdown.
func (s *grpcServer) Serve(ln net.Listener) error {
	return s.srv.Serve(ln)
}

// Shutdown reports NOT_SERVING, lets in-flight RPCs finish until ctx is
// done, then stops hard.
func (s *grpcServer) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.srv.Stop()
		<-done
		return ctx.Err()
	}
}
