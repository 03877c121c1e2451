#!/usr/bin/env bash
# Build the Kubernetes test binaries used by test/cluster from the Go module
# proxy alone: no git clone, no Docker, no make. kube-apiserver and etcd (the
# API-only cluster), plus kubelet, kube-controller-manager, kube-scheduler,
# kube-proxy and CoreDNS (the single-node cluster, cluster.StartNode), and
# Prometheus (the linkerd-viz chart's, as the prometheus image).
#
#   bash hack/build-k8s.sh
#
# The binaries land in ${L5D_K8S_BIN:-/var/tmp/l5d-k8s/v1.36.3/bin}; when all
# already exist there the script does nothing, and otherwise builds only the
# missing ones. Each binary is built in a throwaway module under a work dir,
# so this repository's go.mod is never touched.
#
# Kubernetes components: k8s.io/kubernetes cannot be `go install`ed because its go.mod
# requires every staging module (k8s.io/api, k8s.io/client-go, ...) at v0.0.0
# and replaces it with ./staging/src/... . The throwaway module requires
# k8s.io/kubernetes vX.Y.Z and replaces each staging module with its published
# tag v0.Y.Z, read from upstream's go.mod.
#
# etcd: a tiny main package calling go.etcd.io/etcd/server/v3/etcdmain.Main.
#
# CoreDNS: `go install github.com/coredns/coredns@$COREDNS_VERSION`.
#
# Prometheus: `go install github.com/prometheus/prometheus/cmd/prometheus@...`
# with only the Kubernetes service discovery (tags remove_all_sd,
# enable_kubernetes_sd); Debian's prometheus has no kubernetes_sd_configs.
#
# Env:
#   L5D_K8S_BIN     output dir           (default /var/tmp/l5d-k8s/$K8S_VERSION/bin)
#   L5D_K8S_WORK    throwaway module dir (default: work/ next to the output dir)
#   K8S_VERSION     k8s.io/kubernetes    (default v1.36.3)
#   ETCD_VERSION    go.etcd.io/etcd/server/v3 (default v3.6.16)
#   COREDNS_VERSION github.com/coredns/coredns (default v1.14.7)
#   PROMETHEUS_VERSION github.com/prometheus/prometheus (default v0.316.0,
#                   i.e. Prometheus 3.16.0)
#
# A cold build of etcd and kube-apiserver takes ~6-13 minutes on 2 cores and peaks near 2 GB RSS; keep
# GOCACHE/GOMODCACHE and the output dir between CI runs where possible.
# Concurrent runs sharing the output or the work dir are serialised with
# flock on a .lock file in each.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
BIN=${L5D_K8S_BIN:-/var/tmp/l5d-k8s/${K8S_VERSION}/bin}
WORK=${L5D_K8S_WORK:-$(dirname "$BIN")/work}

# cmd/ names under k8s.io/kubernetes, built together in one throwaway module.
K8S_COMPONENTS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy)

missing_k8s() {
  local c
  for c in "${K8S_COMPONENTS[@]}"; do [[ -x $BIN/$c ]] || echo "$c"; done
}
have_all() { [[ -z $(missing_k8s) && -x $BIN/etcd && -x $BIN/coredns && -x $BIN/prometheus ]]; }

if have_all; then
  echo "build-k8s: all binaries already in $BIN"
  exit 0
fi

mkdir -p "$BIN" "$WORK"
# Always the output dir first, then the work dir, so two runs cannot deadlock.
exec 8>"$BIN/.lock" 9>"$WORK/.lock"
for fd in 8 9; do
  if ! flock -n "$fd"; then
    echo "build-k8s: another build is running (lock on fd $fd); waiting"
    flock "$fd"
  fi
done
# Someone else may have finished the job while we waited.
if have_all; then
  echo "build-k8s: all binaries already in $BIN"
  exit 0
fi

export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
# The throwaway modules must not pick up a go.work from the caller's tree.
export GOWORK=off

t_all=$(date +%s)

build_etcd() {
  local dir=$WORK/etcd t0 t1
  t0=$(date +%s)
  rm -rf "$dir" && mkdir -p "$dir"
  cd "$dir"
  cat >go.mod <<EOF
module l5detcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
EOF
  cat >main.go <<'EOF'
// Command etcd is etcd's own main, built from the Go module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" .
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  t1=$(date +%s)
  echo "build-k8s: etcd ${ETCD_VERSION}: $((t1 - t0))s"
}

# build_kubernetes builds the components named in its arguments.
build_kubernetes() {
  local dir=$WORK/kubernetes t0 t1 t2 dl kmod gover staging required c
  local minor_patch=${K8S_VERSION#v1.}   # 36.3
  local staging_version="v0.${minor_patch}"
  local minor=${minor_patch%%.*}
  t0=$(date +%s)
  rm -rf "$dir" && mkdir -p "$dir"
  cd "$dir"

  dl=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" || true)
  if grep -q '"Error"' <<<"$dl"; then
    echo "build-k8s: cannot fetch k8s.io/kubernetes@${K8S_VERSION}:" >&2
    echo "$dl" >&2
    exit 1
  fi
  kmod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$dl")
  gover=$(awk '$1=="go"{print $2; exit}' "$kmod")
  # Staging modules: required at v0.0.0 and replaced with ./staging/src/... .
  staging=$(grep -oE '^\s*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$kmod" | awk '{print $1}')
  required=$(awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r&&$2=="v0.0.0"{print $1}' "$kmod")

  {
    echo "module l5dk8sbuild"
    echo
    echo "go ${gover}"
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    local m
    for m in $staging; do
      if grep -qxF "$m" <<<"$required"; then
        printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"
      fi
    done
    echo ")"
  } >go.mod
  {
    echo '//go:build tools'
    echo
    echo 'package tools'
    echo
    echo 'import ('
    for c in "$@"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ')'
  } >tools.go
  go mod tidy
  t1=$(date +%s)

  local ldflags="-s -w" pkg now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
    ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${now}"
  done
  # One go build for all of them: the packages they share compile once.
  local pkgs=()
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  rm -rf out && mkdir out
  go build -trimpath -ldflags "$ldflags" -o out/ "${pkgs[@]}"
  for c in "$@"; do mv "out/$c" "$BIN/$c"; done
  t2=$(date +%s)
  echo "build-k8s: $* ${K8S_VERSION}: resolve $((t1 - t0))s, build $((t2 - t1))s"
}

build_coredns() {
  local dir=$WORK/coredns t0
  t0=$(date +%s)
  rm -rf "$dir" && mkdir -p "$dir"
  # `go install pkg@version` runs outside any module and rejects -mod.
  GOFLAGS=-buildvcs=false GOBIN=$dir go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@${COREDNS_VERSION}"
  mv "$dir/coredns" "$BIN/coredns"
  echo "build-k8s: coredns ${COREDNS_VERSION}: $(($(date +%s) - t0))s"
}

build_prometheus() {
  local dir=$WORK/prometheus t0 release
  t0=$(date +%s)
  rm -rf "$dir" && mkdir -p "$dir"
  # Module v0.3XX.Y is Prometheus 3.XX.Y.
  release=${PROMETHEUS_VERSION#v0.3}
  release="3.$((10#${release%%.*})).${release#*.}"
  GOFLAGS=-buildvcs=false GOBIN=$dir go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${release}" \
    "github.com/prometheus/prometheus/cmd/prometheus@${PROMETHEUS_VERSION}"
  mv "$dir/prometheus" "$BIN/prometheus"
  echo "build-k8s: prometheus ${PROMETHEUS_VERSION}: $(($(date +%s) - t0))s"
}

[[ -x $BIN/etcd ]] || (build_etcd)
missing=$(missing_k8s)
# shellcheck disable=SC2086 # one component name per word
[[ -z $missing ]] || (build_kubernetes $missing)
[[ -x $BIN/coredns ]] || (build_coredns)
[[ -x $BIN/prometheus ]] || (build_prometheus)

echo "build-k8s: total $(($(date +%s) - t_all))s"
ls -l "$BIN"
for c in "${K8S_COMPONENTS[@]}"; do "$BIN/$c" --version || true; done
"$BIN/etcd" --version | head -1 || true
"$BIN/coredns" -version | head -1 || true
"$BIN/prometheus" --version | head -1 || true
