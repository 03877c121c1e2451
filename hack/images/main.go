// Command images builds the project's container images as docker-archive
// tarballs, without Docker (see internal/images):
//
//	go run ./hack/images -o DIR [-tag dev] [-images proxy,controller,...] [-coredns PATH] [-prometheus PATH]
//
// Load one into a containerd with `ctr -n k8s.io images import DIR/proxy.tar`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/linkerd-go/linkerd/internal/images"
	"github.com/linkerd-go/linkerd/internal/k8sbin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output directory (required)")
	tag := fs.String("tag", "dev", "tag of the project's images")
	version := fs.String("version", "", "version stamped into the binaries (default: the tag)")
	list := fs.String("images", strings.Join(images.All, ","), "comma-separated images to build")
	coredns := fs.String("coredns", filepath.Join(k8sbin.Dir(), "coredns"), "CoreDNS binary for the coredns image")
	prometheus := fs.String("prometheus", filepath.Join(k8sbin.Dir(), "prometheus"), "Prometheus binary (with Kubernetes service discovery) for the prometheus image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *out == "" {
		return errors.New("-o DIR is required")
	}
	var names []string
	for n := range strings.SplitSeq(*list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	built, err := images.Build(ctx, images.Options{
		Tag:              *tag,
		Version:          *version,
		OutDir:           *out,
		Names:            names,
		CoreDNSBinary:    *coredns,
		PrometheusBinary: *prometheus,
	})
	if err != nil {
		return err
	}
	for _, img := range built {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", img.Ref, img.Path, img.Digest)
	}
	return nil
}
