#!/usr/bin/env bash
# Two meshed "pods" on this machine: each is a network namespace with an app,
# linkerd-init's iptables rules and linkerd-proxy. The client pod calls the
# server pod by IP; both proxies intercept the traffic transparently, and the
# demo prints what their /metrics saw. Needs root. Run: sudo make demo
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root for network namespaces and iptables (try: sudo make demo)" >&2
  exit 1
fi
for b in linkerd-proxy linkerd-init testapp; do
  [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b missing (run: make build)" >&2; exit 1; }
done

P=l5ddemo$$
SUBNET=10.249.$(( $$ % 200 + 20 ))
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$P-client" "$P-server" "$P-sw"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

ip netns add "$P-sw"
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
pod() { # name ip-suffix
  local ns="$P-$1"
  ip netns add "$ns"
  ip link add "v$1$$" netns "$P-sw" type veth peer name eth0 netns "$ns"
  ip -n "$P-sw" link set "v$1$$" master br0 up
  ip -n "$ns" addr add "$SUBNET.$2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip netns exec "$ns" "$BIN/linkerd-init" --incoming-proxy-port 4143 --outgoing-proxy-port 4140 \
    --proxy-uid 2102 --inbound-ports-to-ignore 4190,4191 --log-level warn >/dev/null
  ip netns exec "$ns" setpriv --reuid 2102 --regid 2102 --clear-groups \
    env LINKERD2_PROXY_LOG=warn "$BIN/linkerd-proxy" &
  PIDS+=($!)
}
pod client 11
pod server 12
ip netns exec "$P-server" "$BIN/testapp" --name server --http 8080 --grpc 0 --tcp 8083 --banner 0 2>/dev/null &
PIDS+=($!)

in_pod() { ip netns exec "$P-$1" "${@:2}"; }
for _ in $(seq 50); do
  in_pod client curl -fso /dev/null "http://127.0.0.1:4191/ready" && in_pod server curl -fso /dev/null "http://$SUBNET.12:8080/" && break
  sleep 0.1
done

echo "== client pod ($SUBNET.11) calls the server pod ($SUBNET.12:8080) through both proxies"
for i in 1 2 3; do
  printf '  GET /        -> %s\n' "$(in_pod client curl -s "http://$SUBNET.12:8080/")"
done
printf '  GET /status/503 -> HTTP %s\n' "$(in_pod client curl -s -o /dev/null -w '%{http_code}' "http://$SUBNET.12:8080/status/503")"
printf '  POST /echo   -> %s\n' "$(in_pod client curl -s --data 'hello, mesh' "http://$SUBNET.12:8080/echo")"
printf '  raw TCP echo -> %s\n' "$(in_pod client timeout 5 bash -c "exec 3<>/dev/tcp/$SUBNET.12/8083; echo 'opaque bytes' >&3; head -1 <&3")"

show() { # pod direction
  echo "== $1 pod's proxy, $2 metrics:"
  in_pod "$1" curl -s http://127.0.0.1:4191/metrics |
    grep -E "^(request_total|response_total|tcp_open_total)\{" | grep "direction=\"$2\"" | sed 's/^/  /'
}
show client outbound
show server inbound
