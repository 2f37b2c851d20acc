#!/bin/sh
# Installs the Debian 12 packages that the build, the tests and the benchmarks need.
# Idempotent: with --check it only reports (exit 1) whether something is missing;
# without it, it installs what is missing and nothing else.
set -eu

PKGS="build-essential clang libclang-rt-14-dev pkg-config
libev-dev libcurl4-openssl-dev libmbedtls-dev libcoap3-dev libcoap3-bin
libzstd-dev libbz2-dev libdivsufsort-dev zlib1g-dev libcjson-dev libcmocka-dev
python3 python3-pytest python3-serial python3-pyftpdlib python3-openssl
nginx socat bsdiff zstd gammu picocom hyperfine procps curl openssl"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "missing packages:$missing" >&2
    exit 1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing$missing" >&2
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >&2
