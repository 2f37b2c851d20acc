#!/bin/sh
# Runs every benchmark; each measures modtwin against a peer in the same run.
B=${BUILDDIR:-build}
PY=${PYTHON:-/usr/bin/python3}
set -e
echo "== AT round trip, start-up, RSS (peer: a minimal raw PTY responder)"
"$B/bench/bench_at" "$B/modtwin" 10000
echo
echo "== delta packages on 16 MiB image pairs (peers: bsdiff/bspatch, zstd --patch-from)"
"$B/bench/bench_delta" 16
echo
echo "== downloads into UFS over HTTP, HTTPS, CoAP (peers: curl, coap-client on the same servers)"
"$PY" bench/bench_xfer.py "$B/modtwin"

echo
echo "== raw serial upload (AT+QFUPL with RTS/CTS) against a bare PTY pair"
"$PY" bench/bench_serial.py "$B/modtwin"

echo
echo "== one whole EC200A DFOTA (16 MiB image, delta over HTTP), its phases (peers: curl, pack apply)"
"$PY" bench/bench_dfota.py "$B/modtwin"
