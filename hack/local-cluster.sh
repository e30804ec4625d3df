#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, the way controller-runtime's envtest runs one:
# etcd and kube-apiserver (built by hack/k8s-tools.sh) with their own PKI, RBAC, and ServiceAccount
# token signing, so TokenRequest and TokenReview work. There is no controller-manager or kubelet.
# API aggregation is on (a front-proxy CA and client cert, the --requestheader-* and --proxy-client-*
# flags), so an APIService can point at an aggregated server on loopback through an ExternalName
# Service (test/support/metrics-api.ts serves metrics.k8s.io that way).
#
#   eval "$(hack/local-cluster.sh up)"    start (or find running) and print export lines (KUBECONFIG, and a
#                                         PATH with the tools: kubectl, helm, etcd, envoy, sibyl-xds-client)
#   hack/local-cluster.sh down            stop everything it started and remove its state
#   hack/local-cluster.sh restart-apiserver   stop and start kube-apiserver only (same ports, same etcd)
#   hack/local-cluster.sh status          say what runs
#
# SIBYL_CLUSTER_DIR picks the state folder (default: ~/.local/state/sibyl-cluster), so several
# clusters (the demo, a test run) can live side by side.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SIBYL_CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/sibyl-cluster}"
PKI="$STATE/pki"

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

stop_one() {
  local name="$1" pid
  [ -f "$STATE/$name.pid" ] || return 0
  pid=$(cat "$STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

exports() {
  echo "export KUBECONFIG=$STATE/kubeconfig"
  echo "export PATH=$BIN:\$PATH"
}

make_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt -subj "/CN=sibyl-local-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out apiserver.crt -extfile apiserver.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out admin.crt -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # API aggregation (APIService): kube-apiserver proxies to an aggregated server with this client
    # cert, and that server trusts the X-Remote-* headers of callers the front-proxy CA vouches for.
    # A CA of its own, apart from the client CA, so no ordinary client cert can assert identities.
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout front-proxy-ca.key -out front-proxy-ca.crt -subj "/CN=sibyl-front-proxy-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr -subj "/CN=front-proxy-client" 2>/dev/null
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial -days 3650 -out front-proxy-client.crt -extfile client.ext 2>/dev/null
  ) || die "openssl failed to make the PKI (is openssl installed?)"
}

write_kubeconfig() {
  cat > "$STATE/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sibyl-local
  cluster:
    server: https://127.0.0.1:$(cat "$STATE/apiserver.port")
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: sibyl-local
  context: {cluster: sibyl-local, user: admin, namespace: default}
current-context: sibyl-local
KC
}

start_etcd() {
  local client peer
  client=$(free_port); peer=$(free_port)
  echo "$client" > "$STATE/etcd.port"
  "$BIN/etcd" --name default --data-dir "$STATE/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "default=http://127.0.0.1:$peer" --unsafe-no-fsync --log-level warn \
    >"$STATE/etcd.log" 2>&1 &
  echo $! > "$STATE/etcd.pid"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$client/health" >/dev/null 2>&1 && return 0
    alive etcd || die "etcd exited at start: see $STATE/etcd.log"
    sleep 0.1
  done
  die "etcd did not become healthy in 10s: see $STATE/etcd.log"
}

# Front-proxy flags for API aggregation, when the PKI has the front-proxy CA (a state folder made by
# an older version of this script has none; its apiserver then restarts as it was).
front_proxy_flags() {
  [ -f "$PKI/front-proxy-ca.crt" ] || return 0
  printf '%s\n' \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI/front-proxy-client.key"
}

start_apiserver() {
  local port
  local -a aggregation
  [ -f "$STATE/apiserver.port" ] || free_port > "$STATE/apiserver.port"
  port=$(cat "$STATE/apiserver.port")
  mapfile -t aggregation < <(front_proxy_flags)
  "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$(cat "$STATE/etcd.port")" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --cert-dir "$PKI" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode RBAC --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --disable-admission-plugins ServiceAccount \
    --service-account-issuer "https://127.0.0.1:$port" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    ${aggregation[@]+"${aggregation[@]}"} \
    --v 0 >"$STATE/apiserver.log" 2>&1 &
  echo $! > "$STATE/apiserver.pid"
  local t0; t0=$(date +%s)
  for _ in $(seq 1 600); do
    if curl -fsS --cacert "$PKI/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      log "kube-apiserver ready on https://127.0.0.1:$port after $(( $(date +%s) - t0 ))s"
      return 0
    fi
    alive apiserver || die "kube-apiserver exited at start: see $STATE/apiserver.log"
    sleep 0.1
  done
  die "kube-apiserver not ready in 60s: see $STATE/apiserver.log"
}

cleanup_on_failure() {
  local rc=$?
  if [ $rc -ne 0 ]; then stop_one apiserver; stop_one etcd; fi
  exit $rc
}

case "${1:-}" in
  up)
    BIN=$("$HERE/k8s-tools.sh" path) || die "the Kubernetes tools are not built: run hack/k8s-tools.sh"
    if alive etcd && alive apiserver; then exports; exit 0; fi
    stop_one apiserver; stop_one etcd; rm -rf "$STATE"
    mkdir -p "$STATE"
    echo "$BIN" > "$STATE/bin"
    trap cleanup_on_failure EXIT
    make_pki
    start_etcd
    start_apiserver
    write_kubeconfig
    trap - EXIT
    exports
    ;;
  restart-apiserver)
    BIN=$(cat "$STATE/bin" 2>/dev/null) || die "no cluster in $STATE"
    stop_one apiserver
    start_apiserver
    ;;
  stop-apiserver) stop_one apiserver ;;
  start-apiserver)
    BIN=$(cat "$STATE/bin" 2>/dev/null) || die "no cluster in $STATE"
    start_apiserver
    ;;
  down)
    stop_one apiserver; stop_one etcd
    rm -rf "$STATE"
    log "stopped and removed $STATE"
    ;;
  status)
    for n in etcd apiserver; do if alive $n; then echo "$n: running (pid $(cat "$STATE/$n.pid"))"; else echo "$n: stopped"; fi; done
    ;;
  *) echo "usage: $0 up|down|restart-apiserver|stop-apiserver|start-apiserver|status" >&2; exit 2 ;;
esac
