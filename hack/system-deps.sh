#!/usr/bin/env bash
# Installs the system packages the tests and the demo run, when they are missing:
# redis-server (L2 cache tier), openssl (the local control plane's PKI), curl (readiness probes and
# the Envoy wheel's download), unzip (to unpack that wheel),
# nginx (the proxy benchmark's reference). Debian/Ubuntu with apt-get; elsewhere it says what to install.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v unzip >/dev/null || need+=(unzip)
command -v go >/dev/null || need+=(golang-go)
if [ "${WITH_NGINX:-0}" = 1 ]; then command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light); fi
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[system-deps] installing: ${need[*]}" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
else
  echo "[system-deps] please install: ${need[*]}" >&2
  exit 1
fi
